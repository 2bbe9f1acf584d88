package gqlserve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// NewGraphQL is the GraphQL handler both services serve: the streaming
// transports first (they must see their requests before POST does), then
// OPTIONS and POST, and a coded refusal for anything else (405 for another
// method, 415 for another content type). A document is checked against
// limits' bounds before it is validated, validated by the spec's rules (a
// subscription has exactly one root field), cached once valid, and scored
// against limits' MaxComplexity; introspection is served when allowed,
// and errors are presented by ErrorFor. A panic in a resolver is logged
// and answered "internal error". Bound request bodies with
// limits.LimitBody in front of it. limits nil: NewLimits' defaults,
// counted nowhere.
func NewGraphQL(schema graphql.ExecutableSchema, limits *Limits, introspection bool, log *slog.Logger, streaming ...graphql.Transport) *handler.Server {
	gql := handler.New(schema)
	for _, t := range streaming {
		gql.AddTransport(t)
	}
	gql.AddTransport(transport.Options{})
	gql.AddTransport(post{})
	gql.AddTransport(unsupported{})
	configure(gql, gql.SetValidationRulesFn, limits, introspection, log)
	gql.Use(streamsNeedStreaming{})
	return gql
}

// NewExecutor is an executor of schema configured like NewGraphQL's
// handler (limits, validation rules, cache, introspection switch, error
// presentation, panic recovery), for a transport that runs operations
// itself (sub's streams).
func NewExecutor(schema graphql.ExecutableSchema, limits *Limits, introspection bool, log *slog.Logger) *executor.Executor {
	e := executor.New(schema)
	configure(e, e.SetDefaultRulesFn, limits, introspection, log)
	return e
}

// settings is what a handler.Server and an executor.Executor both take.
type settings interface {
	SetQueryCache(graphql.Cache[*ast.QueryDocument])
	SetParserTokenLimit(int)
	Use(graphql.HandlerExtension)
	SetErrorPresenter(graphql.ErrorPresenterFunc)
	SetRecoverFunc(graphql.RecoverFunc)
}

// configure gives gql what every GraphQL endpoint serves with: automatic
// persisted queries (apq.go), a document
// checked against limits before it is validated, the spec's validation
// rules, a parsed-query cache, the complexity limit after validation,
// introspection when allowed, errors presented
// by ErrorFor and a panic in a resolver logged and answered "internal
// error". setRules is gql's setter of validation rules (named differently
// on the handler and the executor).
func configure(gql settings, setRules func(func() *rules.Rules), limits *Limits, introspection bool, log *slog.Logger) {
	if limits == nil {
		limits = NewLimits(LimitsConfig{Logger: log})
	}
	cache := lru.New[*ast.QueryDocument](1000)
	gql.SetQueryCache(cache)
	gql.SetParserTokenLimit(MaxQueryTokens)
	gql.Use(extension.AutomaticPersistedQuery{Cache: newPersistedQueries()})
	limits.use(gql, cache)
	setRules(validationRules)
	if introspection {
		gql.Use(extension.Introspection{})
	}
	gql.SetErrorPresenter(PresentError(log))
	gql.SetRecoverFunc(Recover(log))
}

// Recover turns a panic in a resolver into an error that says nothing
// more than "internal error" (ErrorFor codes it INTERNAL).
func Recover(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, v any) error {
		log.Error("panic in resolver", "panic", v)
		return errors.New("internal error")
	}
}

// streamsNeedStreaming refuses a subscription sent over plain POST: gqlgen
// would hold the request open until the first event and then end it.
type streamsNeedStreaming struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = streamsNeedStreaming{}

func (streamsNeedStreaming) ExtensionName() string                          { return "StreamsNeedStreaming" }
func (streamsNeedStreaming) Validate(schema graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (streamsNeedStreaming) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	if op.Operation == nil || op.Operation.Operation != ast.Subscription || ctx.Value(plainPOSTKey{}) == nil {
		return nil
	}
	e := gqlerror.Errorf("a subscription needs a stream: a WebSocket (graphql-transport-ws or graphql-ws) or SSE (POST with Accept: text/event-stream)")
	e.Extensions = map[string]any{"code": errkind.CodeBadRequest}
	return e
}

// unsupported answers every request no other transport took.
type unsupported struct{}

func (unsupported) Supports(*http.Request) bool { return true }

func (unsupported) Do(w http.ResponseWriter, r *http.Request, _ graphql.GraphExecutor) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		errkind.WriteHTTP(w, http.StatusMethodNotAllowed, errkind.CodeBadRequest, "send GraphQL requests as POST with Content-Type: application/json")
		return
	}
	errkind.WriteHTTP(w, http.StatusUnsupportedMediaType, errkind.CodeBadRequest, "a GraphQL request needs Content-Type: application/json")
}
