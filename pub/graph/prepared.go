package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oshirase/oshirase/pub/graph/model"
	"github.com/oshirase/oshirase/service/gqlserve"
)

// Prepared answers the publishes backends send most — sendNotification,
// publish with its input in a variable, publishBatch with its inputs in a
// variable — without gqlgen's executor. gqlgen runs each request through
// its operation context, extensions, field context, field middleware and
// a generic response marshaller, then marshals the response again: under
// load that was a third of pub's CPU per publish (loadtest/README, "One
// sendNotification, end to end"); for a batch, coercing and validating
// the inputs variable against the schema (gqlparser's VariableValues,
// by reflection) was a third of pub's CPU per notice (loadtest/README,
// "Batches from a plan").
//
// It learns from gqlgen: when gqlgen runs a document (parsed, validated,
// within the limits, scored) whose operation is one such root field,
// written plainly, Prepared keeps a plan of it under its text and
// operation name. A later request with the same text, name and no
// extensions is answered from the plan: its variables are checked
// strictly (strings where strings are declared, PublishInput's fields and
// an upper-case scope, a list of them where a list is declared, nothing
// undeclared), the resolver is called as gqlgen calls it, and the result
// or error is written as gqlgen writes it, byte for byte
// (TestPreparedAnswersAsGqlgen). Anything else — variables gqlgen would
// coerce or refuse, directives, fragments or aliases repeated in a single
// publish's selection, a second root field — goes to gqlgen as before.
//
// Use it as an extension of the handler (to learn), before BatchRenderer
// (the first extension is the outermost, and BatchRenderer does not pass
// publishBatch on), and put Serve behind gqlserve.Shortcut. It skips the
// field middleware: a server that traces fields, or takes tokens per
// publish in an extension (PUBLISH_RATE), should not put it in front.
type Prepared struct {
	Resolvers ResolverRoot
	Log       *slog.Logger

	plans  *lru.LRU[*plan]
	served atomic.Int64
}

// maxPlans bounds the documents Prepared remembers, least recently used
// first out; like gqlgen's own cache of parsed documents.
const maxPlans = 1000

// NewPrepared is a Prepared for resolvers; log gets what the error
// presenter logs.
func NewPrepared(resolvers ResolverRoot, log *slog.Logger) *Prepared {
	return &Prepared{Resolvers: resolvers, Log: log, plans: lru.New[*plan](maxPlans)}
}

var _ interface {
	graphql.HandlerExtension
	graphql.RootFieldInterceptor
} = (*Prepared)(nil)

// ExtensionName implements graphql.HandlerExtension.
func (*Prepared) ExtensionName() string { return "Prepared" }

// Validate implements graphql.HandlerExtension.
func (*Prepared) Validate(graphql.ExecutableSchema) error { return nil }

// Served counts the requests answered from a plan.
func (x *Prepared) Served() int64 { return x.served.Load() }

func planKey(query, operationName string) string { return query + "\x00" + operationName }

// InterceptRootField implements graphql.RootFieldInterceptor: it learns
// a plan of the operation gqlgen is running, when there is one.
func (x *Prepared) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	rc := graphql.GetRootFieldContext(ctx)
	if rc != nil && rc.Field.Field != nil && (rc.Field.Name == "sendNotification" || rc.Field.Name == "publish" || rc.Field.Name == "publishBatch") {
		oc := graphql.GetOperationContext(ctx)
		key := planKey(oc.RawQuery, oc.OperationName)
		if _, known := x.plans.Get(ctx, key); !known {
			if p, ok := planOf(oc); ok {
				x.plans.Add(ctx, key, p)
			}
		}
	}
	return next(ctx)
}

// Serve answers p from its plan: the response body, or false (nothing
// run) when there is no plan or the variables are not plainly what it
// declares. For gqlserve.Shortcut.
func (x *Prepared) Serve(ctx context.Context, p *graphql.RawParams) ([]byte, bool) {
	pl, ok := x.plans.Get(ctx, planKey(p.Query, p.OperationName))
	if !ok {
		return nil, false
	}
	vals, ok := pl.variables(p.Variables)
	if !ok {
		return nil, false
	}
	x.served.Add(1)
	return pl.run(ctx, x.Resolvers.Mutation(), x.Log, vals), true
}

// plan is one document's publish.
type plan struct {
	field   *ast.Field // the root field: its alias, and where errors point
	publish bool       // publish(input: $var)
	batch   bool       // publishBatch(inputs: $var); neither: sendNotification
	vars    []variable // the operation's variables
	to      argument   // sendNotification's
	text    argument
	key     argument
	input   string      // publish's or publishBatch's variable
	shape   []field     // SendNotificationResponse's fields, in order
	results resultShape // publishBatch's: PublishResult's, collected
}

// variable is a declared variable and its type.
type variable struct {
	name string
	typ  string // "String!", "String", "PublishInput!" or "[PublishInput!]!"
}

// argument is a variable's name or, with variable empty, a literal
// (value nil: null or left out).
type argument struct {
	variable string
	value    *string
}

// value is a variable's value as the plan reads it: a string (nil: null),
// an input or a list of them.
type value struct {
	s      *string
	input  model.PublishInput
	inputs []*model.PublishInput
}

// planOf is the plan of oc's operation, false unless it is one mutation
// field written plainly: sendNotification with string literals or
// variables and a selection of SendNotificationResponse's fields, each key
// once; publish(input: $var) with the same selection; or
// publishBatch(inputs: $var) with a selection of PublishResult's fields
// that holds no directive (so that it is the same whatever the
// variables); no directives on the operation or the field, variables
// without defaults.
func planOf(oc *graphql.OperationContext) (*plan, bool) {
	op := oc.Operation
	if op == nil || op.Operation != ast.Mutation || len(op.Directives) > 0 || len(op.SelectionSet) != 1 {
		return nil, false
	}
	f, ok := op.SelectionSet[0].(*ast.Field)
	if !ok || len(f.Directives) > 0 {
		return nil, false
	}
	p := &plan{field: f, publish: f.Name == "publish", batch: f.Name == "publishBatch"}
	types := map[string]string{}
	for _, d := range op.VariableDefinitions {
		typ := d.Type.String()
		if d.DefaultValue != nil || len(d.Directives) > 0 || !slices.Contains([]string{"String!", "String", "PublishInput!", "[PublishInput!]!"}, typ) {
			return nil, false
		}
		p.vars = append(p.vars, variable{d.Variable, typ})
		types[d.Variable] = typ
	}
	if p.batch {
		if len(f.Arguments) != 1 || f.Arguments[0].Name != "inputs" || f.Arguments[0].Value.Kind != ast.Variable ||
			types[f.Arguments[0].Value.Raw] != "[PublishInput!]!" || !static(f.SelectionSet) {
			return nil, false
		}
		p.input = f.Arguments[0].Value.Raw
		p.results, ok = resultShapeOf(oc, f.SelectionSet)
		return p, ok && len(p.results) > 0
	}
	for _, a := range f.Arguments {
		switch {
		case p.publish && a.Name == "input":
			if a.Value.Kind != ast.Variable || types[a.Value.Raw] != "PublishInput!" {
				return nil, false
			}
			p.input = a.Value.Raw
		case !p.publish && (a.Name == "to" || a.Name == "text" || a.Name == "idempotencyKey"):
			arg, ok := argumentOf(a.Value, types, a.Name == "idempotencyKey")
			if !ok {
				return nil, false
			}
			switch a.Name {
			case "to":
				p.to = arg
			case "text":
				p.text = arg
			default:
				p.key = arg
			}
		default:
			return nil, false
		}
	}
	if p.publish && p.input == "" || !p.publish && (!p.to.set() || !p.text.set()) {
		return nil, false
	}
	for _, s := range f.SelectionSet {
		g, ok := s.(*ast.Field)
		if !ok || len(g.Directives) > 0 || len(g.Arguments) > 0 || len(g.SelectionSet) > 0 ||
			!slices.Contains([]string{"receivedUsers", "id", "timestamp", "__typename"}, g.Name) ||
			slices.ContainsFunc(p.shape, func(h field) bool { return h.alias == g.Alias }) {
			return nil, false
		}
		p.shape = append(p.shape, field{alias: g.Alias, name: g.Name})
	}
	return p, len(p.shape) > 0
}

// static reports whether sel holds no directive, in its fields and in
// the fragments it spreads: what gqlgen collects of it is then the same
// for any variables.
func static(sel ast.SelectionSet) bool {
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if len(s.Directives) > 0 || !static(s.SelectionSet) {
				return false
			}
		case *ast.InlineFragment:
			if len(s.Directives) > 0 || !static(s.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			if len(s.Directives) > 0 || s.Definition == nil || len(s.Definition.Directives) > 0 || !static(s.Definition.SelectionSet) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// argumentOf reads a sendNotification argument: a string literal, null
// (only where nullable), or a string variable (a nullable one only where
// nullable).
func argumentOf(v *ast.Value, types map[string]string, nullable bool) (argument, bool) {
	switch v.Kind {
	case ast.Variable:
		typ := types[v.Raw]
		return argument{variable: v.Raw}, typ == "String!" || typ == "String" && nullable
	case ast.StringValue, ast.BlockValue:
		s := v.Raw
		return argument{value: &s}, true
	case ast.NullValue:
		return argument{}, nullable
	}
	return argument{}, false
}

func (a argument) set() bool { return a.variable != "" || a.value != nil }

// variables reads vars as the plan declares them; false for anything
// gqlgen would coerce, refuse or ignore: a value of another JSON type, an
// input field it does not know, a scope not written as the enum is, a
// variable it does not declare.
func (p *plan) variables(vars map[string]any) (map[string]value, bool) {
	out := make(map[string]value, len(p.vars))
	seen := 0
	for _, d := range p.vars {
		v, present := vars[d.name]
		if present {
			seen++
		}
		switch d.typ {
		case "String!", "String":
			if v == nil && d.typ == "String" {
				out[d.name] = value{}
				continue
			}
			s, ok := v.(string)
			if !ok {
				return nil, false
			}
			out[d.name] = value{s: &s}
		case "PublishInput!":
			in, ok := publishInput(v)
			if !ok {
				return nil, false
			}
			out[d.name] = value{input: in}
		case "[PublishInput!]!":
			list, ok := v.([]any)
			if !ok {
				return nil, false
			}
			all := make([]model.PublishInput, len(list))
			inputs := make([]*model.PublishInput, len(list))
			for i, item := range list {
				if all[i], ok = publishInput(item); !ok {
					return nil, false
				}
				inputs[i] = &all[i]
			}
			out[d.name] = value{inputs: inputs}
		}
	}
	return out, seen == len(vars)
}

// publishInput reads a PublishInput variable: scope and text strings, the
// others strings or null.
func publishInput(v any) (model.PublishInput, bool) {
	var in model.PublishInput
	m, ok := v.(map[string]any)
	if !ok {
		return in, false
	}
	scope, ok := m["scope"].(string)
	if !ok {
		return in, false
	}
	if in.Scope, ok = unmarshalNScope2githubᚗcomᚋoshiraseᚋoshiraseᚋwireᚐScope[scope]; !ok {
		return in, false
	}
	if in.Text, ok = m["text"].(string); !ok {
		return in, false
	}
	for k, v := range m {
		var dst **string
		switch k {
		case "scope", "text":
			continue
		case "to":
			dst = &in.To
		case "tenant":
			dst = &in.Tenant
		case "idempotencyKey":
			dst = &in.IdempotencyKey
		default:
			return in, false
		}
		if v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return in, false
		}
		*dst = &s
	}
	return in, true
}

// arg is a's value: its literal, or its variable's.
func (a argument) arg(vals map[string]value) *string {
	if a.variable != "" {
		return vals[a.variable].s
	}
	return a.value
}

// run calls the resolver as gqlgen's generated field does and writes the
// response as gqlgen's POST transport would.
func (p *plan) run(ctx context.Context, m MutationResolver, log *slog.Logger, vals map[string]value) []byte {
	fc := &graphql.FieldContext{Object: "Mutation", Field: graphql.CollectedField{Field: p.field}, IsMethod: true, IsResolver: true}
	if p.batch {
		fc.Args = map[string]any{"inputs": vals[p.input].inputs}
		return p.runBatch(graphql.WithFieldContext(ctx, fc), m, log, vals)
	}
	ctx = graphql.WithFieldContext(ctx, fc)
	res, panicked, err := p.resolve(ctx, m, log, vals)
	if err != nil || res == nil {
		return p.failed(ctx, log, err, panicked)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"data":{`)
	graphql.MarshalString(p.field.Alias).MarshalGQL(&buf)
	buf.WriteByte(':')
	writeObject(&buf, p.shape, func(f field) {
		switch f.name {
		case "__typename":
			graphql.MarshalString("SendNotificationResponse").MarshalGQL(&buf)
		case "receivedUsers":
			writeInt(&buf, &res.ReceivedUsers)
		case "id":
			graphql.MarshalID(res.ID).MarshalGQL(&buf)
		case "timestamp":
			writeInt(&buf, &res.Timestamp)
		}
	})
	buf.WriteString(`}}`)
	return htmlEscaped(buf.Bytes())
}

// runBatch is run for publishBatch: the resolver called as gqlgen calls
// it, its results written as BatchRenderer writes them.
func (p *plan) runBatch(ctx context.Context, m MutationResolver, log *slog.Logger, vals map[string]value) []byte {
	results, panicked, err := p.resolveBatch(ctx, m, log, vals)
	if err != nil { // a nil list without one is written [], as gqlgen does
		return p.failed(ctx, log, err, panicked)
	}
	for i, r := range results {
		if r == nil { // as gqlgen: the list, and so the whole data, is null
			return respondNull(ctx, log, func(ctx context.Context) {
				graphql.AddInvalidNullError(graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i}), "PublishResult!")
			})
		}
	}
	var buf bytes.Buffer
	buf.Grow(32 + len(results)*64)
	buf.WriteString(`{"data":{`)
	graphql.MarshalString(p.field.Alias).MarshalGQL(&buf)
	buf.WriteString(`:[`)
	for i, r := range results {
		if i > 0 {
			buf.WriteByte(',')
		}
		p.results.write(&buf, r)
	}
	buf.WriteString(`]}}`)
	return htmlEscaped(buf.Bytes())
}

// htmlEscaped is b as gqlgen's response writes it: through json.Marshal,
// which escapes <, >, &, U+2028 and U+2029 in the data's strings (an id,
// an error's message could hold them).
func htmlEscaped(b []byte) []byte {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 { // 0xE2: U+2028's and U+2029's first byte
			var esc bytes.Buffer
			json.HTMLEscape(&esc, b)
			return esc.Bytes()
		}
	}
	return b
}

// resolve calls the resolver; a panic is an error as gqlgen's recover
// function words it.
func (p *plan) resolve(ctx context.Context, m MutationResolver, log *slog.Logger, vals map[string]value) (res *model.SendNotificationResponse, panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, panicked, err = nil, true, graphql.ErrorOnPath(ctx, gqlserve.Recover(log)(ctx, r))
		}
	}()
	if p.publish {
		res, err = m.Publish(ctx, vals[p.input].input)
	} else {
		res, err = m.SendNotification(ctx, *p.to.arg(vals), *p.text.arg(vals), p.key.arg(vals))
	}
	return res, false, err
}

// resolveBatch is resolve for publishBatch.
func (p *plan) resolveBatch(ctx context.Context, m MutationResolver, log *slog.Logger, vals map[string]value) (res []*model.PublishResult, panicked bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, panicked, err = nil, true, graphql.ErrorOnPath(ctx, gqlserve.Recover(log)(ctx, r))
		}
	}()
	res, err = m.PublishBatch(ctx, vals[p.input].inputs)
	return res, false, err
}

// failed is the response to a failed root field, as gqlgen writes it: the
// error presented with the field's path (and, unless the resolver
// panicked, its location), data null (the field is non-null). err nil:
// the resolver answered nothing.
func (p *plan) failed(ctx context.Context, log *slog.Logger, err error, panicked bool) []byte {
	return respondNull(ctx, log, func(ctx context.Context) {
		switch {
		case err == nil:
			graphql.AddInvalidNullError(ctx, "")
		case panicked:
			graphql.AddError(ctx, err)
		default:
			graphql.AddError(ctx, graphql.AddFieldLocationToError(ctx, err))
		}
	})
}

// respondNull is a response with data null and the errors add adds, as
// gqlgen presents them.
func respondNull(ctx context.Context, log *slog.Logger, add func(context.Context)) []byte {
	ctx = graphql.WithResponseContext(ctx, gqlserve.PresentError(log), gqlserve.Recover(log))
	add(ctx)
	b, _ := json.Marshal(&graphql.Response{Errors: graphql.GetErrors(ctx), Data: json.RawMessage("null")})
	return b
}
