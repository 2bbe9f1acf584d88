package graph

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/sub/graph/model"
	"github.com/oshirase/oshirase/wire"
)

// Notifications serves onNotificationReceived to the transport, which runs
// the stream itself: Open checks a subscription's root field and says which
// channels it reads and in which shape its notices render; Shape.Render
// executes the selection set with gqlgen's generated code, once per notice
// and shape however many subscriptions share it.
//
// Why drive the generated code directly: gqlgen's own path to a
// subscription's events (DispatchOperation → ResolveFieldStream) keeps a
// goroutine, a channel and an operation context per subscription and
// executes the selection for each of them. Calling the generated
// _Notification for a shape's representative operation is the same field
// execution (scalar and enum marshalling, field middleware, error
// presentation, panic recovery) with none of the per-subscription state.
// It uses unexported generated names, so this file lives in the package; a
// regeneration that renamed them would fail to compile, not misbehave.
type Notifications struct {
	es        *executableSchema
	resolver  *Resolver
	presenter graphql.ErrorPresenterFunc
	recover   graphql.RecoverFunc

	hole []byte // the token Render writes for a cursor, quoted

	mu     sync.Mutex
	shapes map[string]*Shape

	executions atomic.Int64
}

// NewNotifications returns the stream side of schema (a NewExecutableSchema
// of this package). presenter and recover are the ones the executor uses,
// so errors inside a notice look like any other.
func NewNotifications(schema graphql.ExecutableSchema, r *Resolver, presenter graphql.ErrorPresenterFunc, recover graphql.RecoverFunc) *Notifications {
	es, ok := schema.(*executableSchema)
	if !ok {
		panic("graph: NewNotifications needs this package's executable schema")
	}
	if presenter == nil {
		presenter = graphql.DefaultErrorPresenter
	}
	if recover == nil {
		recover = graphql.DefaultRecover
	}
	var token [16]byte
	_, _ = rand.Read(token[:])
	hole := []byte(`"` + hex.EncodeToString(token[:]) + `"`)
	return &Notifications{es: es, resolver: r, presenter: presenter, recover: recover, hole: hole, shapes: map[string]*Shape{}}
}

// CursorHole is what a rendered notice holds, as a JSON string, wherever
// its selection asks for the cursor: each subscription's own cursor goes
// there when its frame is written (Splice), so that the bytes rendered once
// serve every subscription of the shape. It is random per process: a
// notice's text cannot hold it but by chance (2^-128).
func (n *Notifications) CursorHole() []byte { return n.hole }

// Executions is how many times a Notification selection set was rendered
// for a notice (written directly or executed): once per notice and shape
// present on its channel.
func (n *Notifications) Executions() int64 { return n.executions.Load() }

// Shapes is how many distinct shapes live subscriptions use.
func (n *Notifications) Shapes() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.shapes)
}

// Open starts what a subscription operation's one root field asks for: the
// channels it may read (the access policy decides), its shape, which the
// caller releases when the subscription ends, and the cursor to resume
// after (after; nil for none). A field that is not a stream
// of this schema is a validation error (code GRAPHQL_VALIDATION_FAILED);
// other errors are the resolver's (bad input, forbidden).
func (n *Notifications) Open(ctx context.Context, opCtx *graphql.OperationContext, field graphql.CollectedField) ([]wire.Channel, *Shape, *string, error) {
	if field.Name != "onNotificationReceived" {
		err := gqlerror.ErrorPosf(field.Position, "%s is not a subscription stream of this schema", strconv.Quote(field.Name))
		errcode.Set(err, errcode.ValidationFailed)
		return nil, nil, nil, err
	}
	ec := newExecutionContext(opCtx, n.es, nil)
	args, err := ec.field_Subscription_onNotificationReceived_args(ctx, field.ArgumentMap(opCtx.Variables))
	if err != nil {
		return nil, nil, nil, err
	}
	channels, err := n.resolver.Audience.Channels(ctx, args["userName"].(string))
	if err != nil {
		return nil, nil, nil, err
	}
	after, _ := args["after"].(*string)
	return channels, n.intern(opCtx, field), after, nil
}

// A Shape is a Notification selection after aliases, fragments,
// __typename and @include/@skip are resolved with its operation's
// variables. Subscriptions with the same shape render a notice to the same
// bytes, so the hub renders it once for all of them.
type Shape struct {
	n     *Notifications
	key   string // "" for a shape that is never shared
	opCtx *graphql.OperationContext
	field graphql.CollectedField
	base  context.Context // the operation and the root field, as execution sees them
	refs  int             // guarded by n.mu
	// fields is the collected selection Render writes itself; nil when
	// it holds what only the generated execution renders (a @defer, a
	// field it does not know) or nothing (every field skipped), which the
	// generated execution then renders for every notice.
	fields []shapeField
}

// shapeField is one field of a shape: the key it is written under and
// the Notification field it asks for.
type shapeField struct{ key, name string }

// writable collects the shape's fields as the generated _Notification
// does, once, for Render to write; nil if any is not one it writes.
func writable(opCtx *graphql.OperationContext, field graphql.CollectedField) []shapeField {
	var out []shapeField
	for _, f := range graphql.CollectFields(opCtx, field.Selections, notificationImplementors) {
		switch {
		case len(f.Deferrables) > 0 || len(f.Arguments) > 0 || len(f.Selections) > 0:
			return nil
		case f.Name == "__typename", f.Name == "id", f.Name == "text", f.Name == "timestamp", f.Name == "scope", f.Name == "cursor":
			out = append(out, shapeField{key: f.Alias, name: f.Name})
		default:
			return nil
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Key identifies the shape: equal keys render equal bytes.
func (s *Shape) Key() string { return s.key }

// shapeKey is the root field's response key, then each collected field's
// response key and name. A field with arguments or a selection of its own
// (the schema has none on Notification today) makes the shape unshared
// rather than risk two different renderings under one key.
func shapeKey(opCtx *graphql.OperationContext, field graphql.CollectedField) (string, bool) {
	var b strings.Builder
	b.WriteString(field.Alias)
	for _, f := range graphql.CollectFields(opCtx, field.Selections, notificationImplementors) {
		if len(f.Arguments) > 0 || len(f.Selections) > 0 {
			return "", false
		}
		b.WriteByte(0)
		b.WriteString(f.Alias)
		b.WriteByte(':')
		b.WriteString(f.Name)
	}
	return b.String(), true
}

func (n *Notifications) intern(opCtx *graphql.OperationContext, field graphql.CollectedField) *Shape {
	key, shared := shapeKey(opCtx, field)
	if !shared {
		return n.newShape("", opCtx, field)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.shapes[key]
	if s == nil {
		s = n.newShape(key, opCtx, field)
		n.shapes[key] = s
		return s
	}
	s.refs++
	return s
}

func (n *Notifications) newShape(key string, opCtx *graphql.OperationContext, field graphql.CollectedField) *Shape {
	ctx := graphql.WithOperationContext(context.Background(), opCtx)
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{
		Object: "Subscription", Field: field, IsMethod: true, IsResolver: true,
	})
	return &Shape{n: n, key: key, opCtx: opCtx, field: field, base: ctx, refs: 1, fields: writable(opCtx, field)}
}

// Release gives back one subscription's hold on the shape; the last one
// forgets it (shapes are keyed by client-chosen aliases, so they must not
// outlive their subscriptions).
func (s *Shape) Release() {
	if s.key == "" {
		return
	}
	n := s.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if s.refs--; s.refs == 0 && n.shapes[s.key] == s {
		delete(n.shapes, s.key)
	}
}

// Render executes the shape's selection for m and returns the GraphQL
// response as a subscription event carries it: {"data":{…}} with "errors"
// when a field failed, and the CursorHole wherever the cursor was asked
// for. The bytes are shared by every subscription of the shape and never
// modified.
//
// Notification's fields are a message's own values, none of which can
// fail, so a shape of them is written directly, with gqlgen's scalar
// marshalers, in the order the generated execution collects them: the
// same bytes (TestRenderWritesAsExecution, FuzzRender) for a tenth of the
// time and allocations. Any other shape is executed.
func (s *Shape) Render(m *wire.Message) []byte {
	s.n.executions.Add(1)
	if s.fields != nil {
		return s.write(m)
	}
	return s.execute(m)
}

// write renders m for the shape's fields as the generated execution does.
func (s *Shape) write(m *wire.Message) []byte {
	var buf bytes.Buffer
	buf.Grow(64 + 16*len(s.fields) + len(s.field.Alias) + len(m.Text) + len(m.ID) + len(s.n.hole))
	buf.WriteString(`{"data":{`)
	graphql.MarshalString(s.field.Alias).MarshalGQL(&buf)
	buf.WriteString(`:{`)
	for i, f := range s.fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		graphql.MarshalString(f.key).MarshalGQL(&buf)
		buf.WriteByte(':')
		switch f.name {
		case "__typename":
			buf.WriteString(`"Notification"`)
		case "id":
			graphql.MarshalID(m.ID).MarshalGQL(&buf)
		case "text":
			graphql.MarshalString(m.Text).MarshalGQL(&buf)
		case "timestamp":
			buf.Write(strconv.AppendInt(buf.AvailableBuffer(), m.Timestamp(), 10))
		case "scope":
			graphql.MarshalString(marshalNScope2githubᚗcomᚋoshiraseᚋoshiraseᚋwireᚐScope[m.Scope]).MarshalGQL(&buf)
		case "cursor":
			buf.Write(s.n.hole)
		}
	}
	buf.WriteString(`}}}`)
	return buf.Bytes()
}

// execute renders m through the generated _Notification.
func (s *Shape) execute(m *wire.Message) []byte {
	n := s.n
	ctx := graphql.WithResponseContext(s.base, n.presenter, n.recover) // errors are per execution
	ec := newExecutionContext(s.opCtx, n.es, nil)
	var v graphql.Marshaler
	func() {
		defer func() {
			if r := recover(); r != nil {
				graphql.AddError(ctx, ec.Recover(ctx, r))
				v = graphql.Null
			}
		}()
		v = ec._Notification(ctx, s.field.Selections, &model.Notice{Message: m, Cursor: string(n.hole[1 : len(n.hole)-1])})
	}()

	var buf bytes.Buffer
	buf.Grow(128 + len(m.Text) + len(m.ID))
	buf.WriteString(`{"data":`)
	if v == graphql.Null {
		// The field is non-null: a null notice nulls the whole result.
		buf.WriteString("null")
	} else {
		buf.WriteByte('{')
		graphql.MarshalString(s.field.Alias).MarshalGQL(&buf)
		buf.WriteByte(':')
		v.MarshalGQL(&buf)
		buf.WriteByte('}')
	}
	if errs := graphql.GetErrors(ctx); len(errs) > 0 {
		b, err := json.Marshal(errs)
		if err == nil {
			buf.WriteString(`,"errors":`)
			buf.Write(b)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
