package graph

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strconv"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/oshirase/oshirase/pub/graph/model"
)

// BatchRenderer answers publishBatch without gqlgen's per-item machinery.
// gqlgen resolves a list of objects with a goroutine, a field context and
// a collection of the selection set per item, and every scalar of every
// item through the field middleware: for 1,000 results that was the
// largest part of pub's time per notice (loadtest/README, "pub: where a
// batched notice's time goes"). BatchRenderer collects the selection set
// of PublishResult (and of its error) once per call and writes every
// item's fields with gqlgen's own scalar marshalers, so the response is
// byte for byte gqlgen's (TestBatchRendererAnswersAsGqlgen). Everything
// before and around the field is gqlgen's still: parsing, validation,
// variable coercion, the other root fields, errors and extensions.
//
// A call it does not recognise whole (an argument it would have to coerce
// differently, a @defer) goes to gqlgen unchanged. Field interceptors run
// around publishBatch itself but not around each result's scalars: a
// server that traces every field should not Use it.
type BatchRenderer struct {
	Resolvers ResolverRoot
}

var _ interface {
	graphql.HandlerExtension
	graphql.RootFieldInterceptor
} = BatchRenderer{}

// ExtensionName implements graphql.HandlerExtension.
func (BatchRenderer) ExtensionName() string { return "BatchRenderer" }

// Validate implements graphql.HandlerExtension.
func (BatchRenderer) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptRootField implements graphql.RootFieldInterceptor.
func (b BatchRenderer) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	oc := graphql.GetOperationContext(ctx)
	rc := graphql.GetRootFieldContext(ctx)
	if rc == nil || rc.Field.Field == nil || rc.Field.Name != "publishBatch" || oc.Operation.Operation != ast.Mutation {
		return next(ctx)
	}
	shape, ok := resultShapeOf(oc, rc.Field.Selections)
	if !ok {
		return next(ctx)
	}
	inputs, ok := batchInputs(rc.Field.ArgumentMap(oc.Variables)["inputs"])
	if !ok {
		return next(ctx)
	}
	fc := &graphql.FieldContext{
		Object: "Mutation", Field: rc.Field, Args: map[string]any{"inputs": inputs},
		IsMethod: true, IsResolver: true,
	}
	return b.resolve(graphql.WithFieldContext(ctx, fc), oc, fc, shape)
}

// resolve calls the resolver as gqlgen's ResolveField does (through the
// field middleware, recovering a panic) and renders its results.
func (b BatchRenderer) resolve(ctx context.Context, oc *graphql.OperationContext, fc *graphql.FieldContext, shape resultShape) (ret graphql.Marshaler) {
	defer func() {
		if r := recover(); r != nil {
			oc.Error(ctx, oc.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	res, err := oc.ResolverMiddleware(ctx, func(ctx context.Context) (any, error) {
		return b.Resolvers.Mutation().PublishBatch(ctx, fc.Args["inputs"].([]*model.PublishInput))
	})
	if err != nil {
		oc.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
		return graphql.Null
	}
	if res == nil {
		graphql.AddInvalidNullError(ctx, "")
		return graphql.Null
	}
	results, ok := res.([]*model.PublishResult)
	if !ok {
		oc.Errorf(ctx, `unexpected type %T from middleware/directive chain, should be %T`, res, results)
		return graphql.Null
	}
	fc.Result = results
	for i, r := range results {
		if r == nil { // as gqlgen: the list, and so the whole data, is null
			graphql.AddInvalidNullError(graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i}), "PublishResult!")
			return graphql.Null
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(results) * 64)
	buf.WriteByte('[')
	for i, r := range results {
		if i > 0 {
			buf.WriteByte(',')
		}
		shape.write(&buf, r)
	}
	buf.WriteByte(']')
	return rendered(buf.Bytes())
}

// rendered is bytes already written as gqlgen would.
type rendered []byte

func (r rendered) MarshalGQL(w io.Writer) { _, _ = w.Write(r) }

// field is one entry of a collected selection set: the key it is written
// under and what it asks for.
type field struct {
	alias, name string
	sub         []field // error's own fields
}

// resultShape is PublishResult's selection set, collected once per call.
type resultShape []field

// resultShapeOf collects sel as gqlgen does for each PublishResult (and
// the selection set of its error); false if it holds what BatchRenderer
// does not write.
func resultShapeOf(oc *graphql.OperationContext, sel ast.SelectionSet) (resultShape, bool) {
	return collect(oc, sel, "PublishResult")
}

// writes are the fields of each type BatchRenderer writes.
var writes = map[string][]string{
	"PublishResult": {"__typename", "receivedUsers", "id", "timestamp", "error"},
	"PublishError":  {"__typename", "code", "message"},
}

// collect is graphql.CollectFields for an object of type typ (which
// merges the fields of one key into one, as gqlgen writes them), error's
// own fields collected as PublishError's; false for a deferred fragment
// or a field BatchRenderer does not write.
func collect(oc *graphql.OperationContext, sel ast.SelectionSet, typ string) ([]field, bool) {
	var out []field
	for _, f := range graphql.CollectFields(oc, sel, []string{typ}) {
		if len(f.Deferrables) > 0 || !slices.Contains(writes[typ], f.Name) {
			return nil, false
		}
		w := field{alias: f.Alias, name: f.Name}
		if typ == "PublishResult" && f.Name == "error" {
			var ok bool
			if w.sub, ok = collect(oc, f.Selections, "PublishError"); !ok {
				return nil, false
			}
		}
		out = append(out, w)
	}
	return out, true
}

// write writes r as gqlgen's _PublishResult would for this selection set.
func (s resultShape) write(buf *bytes.Buffer, r *model.PublishResult) {
	writeObject(buf, s, func(f field) {
		switch f.name {
		case "__typename":
			graphql.MarshalString("PublishResult").MarshalGQL(buf)
		case "receivedUsers":
			writeInt(buf, r.ReceivedUsers)
		case "id":
			if r.ID == nil {
				buf.WriteString("null")
			} else {
				graphql.MarshalID(*r.ID).MarshalGQL(buf)
			}
		case "timestamp":
			writeInt(buf, r.Timestamp)
		case "error":
			if r.Error == nil {
				buf.WriteString("null")
				return
			}
			writeObject(buf, f.sub, func(f field) {
				switch f.name {
				case "__typename":
					graphql.MarshalString("PublishError").MarshalGQL(buf)
				case "code":
					graphql.MarshalString(r.Error.Code).MarshalGQL(buf)
				case "message":
					graphql.MarshalString(r.Error.Message).MarshalGQL(buf)
				}
			})
		}
	})
}

// writeObject writes a JSON object of fields, as gqlgen's field set does:
// each field's key, then its value as value writes it.
func writeObject(buf *bytes.Buffer, fields []field, value func(field)) {
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		graphql.MarshalString(f.alias).MarshalGQL(buf)
		buf.WriteByte(':')
		value(f)
	}
	buf.WriteByte('}')
}

func writeInt(buf *bytes.Buffer, v *int64) {
	if v == nil {
		buf.WriteString("null")
		return
	}
	buf.Write(strconv.AppendInt(buf.AvailableBuffer(), *v, 10))
}

// batchInputs reads publishBatch's inputs argument (coerced by gqlgen's
// validator already) as the generated unmarshalers do; false for anything
// they would answer differently, which then goes to gqlgen.
func batchInputs(v any) ([]*model.PublishInput, bool) {
	if v == nil {
		return nil, false
	}
	list := graphql.CoerceList(v)
	out := make([]*model.PublishInput, len(list))
	all := make([]model.PublishInput, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, false
		}
		in := &all[i]
		for k, v := range m {
			var err error
			switch k {
			case "scope":
				var s string
				if s, err = graphql.UnmarshalString(v); err == nil {
					in.Scope, ok = unmarshalNScope2githubᚗcomᚋoshiraseᚋoshiraseᚋwireᚐScope[s]
				}
			case "to":
				in.To, err = optionalString(v)
			case "tenant":
				in.Tenant, err = optionalString(v)
			case "text":
				in.Text, err = graphql.UnmarshalString(v)
			case "idempotencyKey":
				in.IdempotencyKey, err = optionalString(v)
			default:
				ok = false
			}
			if err != nil || !ok {
				return nil, false
			}
		}
		if _, ok := m["scope"]; !ok {
			return nil, false
		}
		if _, ok := m["text"]; !ok {
			return nil, false
		}
		out[i] = in
	}
	return out, true
}

func optionalString(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, err := graphql.UnmarshalString(v)
	return &s, err
}
