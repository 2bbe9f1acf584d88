package gqlserve

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
)

// LimitsConfig configures Limits; a zero field takes its default.
type LimitsConfig struct {
	// MaxBodyBytes bounds a request body (LimitBody): MAX_BODY_BYTES on
	// pub, READ_LIMIT on sub. Default: 1 MiB.
	MaxBodyBytes int64
	// MaxDepth bounds how deep a document's fields nest (MAX_QUERY_DEPTH).
	// Default: MaxQueryDepth.
	MaxDepth int
	// MaxComplexity bounds a document's cost as gqlgen's complexity
	// extension scores it with the schema's complexity functions
	// (MAX_QUERY_COMPLEXITY). Default: MaxQueryComplexity.
	MaxComplexity int
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Limits are one service's bounds on GraphQL requests, and the count of
// what they refused: the body (LimitBody: 413 REQUEST_TOO_LARGE), then
// the document, checked before validation against the token, selection
// and repetition bounds and MaxDepth (operationLimits), then, once
// validated, its cost against MaxComplexity as gqlgen's complexity
// extension scores it (COMPLEXITY_LIMIT_EXCEEDED for both).
//
// The order keeps the complexity walk cheap: gqlgen walks a fragment
// again at every spread with no bound of its own (exponential on
// fragments that spread each other twice), but it visits exactly the
// selections operationLimits counted, so a document that reaches it
// costs at most MaxQuerySelections steps, whatever MaxComplexity is.
//
// Every refusal is counted (Register) and logged at most once a second
// per reason. One Limits serves all of a service's GraphQL endpoints
// (sub's POST and its streams), so the counts are the service's.
type Limits struct {
	cfg      LimitsConfig
	log      *slog.Logger
	refused  [numShapes]atomic.Int64
	logged   [numShapes]logging.Throttle
	tooLarge atomic.Int64
	bodyLog  logging.Throttle
}

// NewLimits returns Limits for cfg.
func NewLimits(cfg LimitsConfig) *Limits {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxDepth <= 0 {
		cfg.MaxDepth = MaxQueryDepth
	}
	if cfg.MaxComplexity <= 0 {
		cfg.MaxComplexity = MaxQueryComplexity
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Limits{cfg: cfg, log: cfg.Logger.With("component", "limits")}
}

// Refused returns how many documents were refused for reason (one of
// RefusalReasons).
func (l *Limits) Refused(reason string) int64 {
	for s, name := range refusalNames {
		if name == reason && name != "" {
			return l.refused[s].Load()
		}
	}
	return 0
}

// TooLarge returns how many request bodies were refused over MaxBodyBytes.
func (l *Limits) TooLarge() int64 { return l.tooLarge.Load() }

// Register puts the counts on m: oshirase_<service>_documents_refused_total
// by reason, and oshirase_<service>_requests_too_large_total.
func (l *Limits) Register(m *metrics.Registry, service string) {
	fns := map[string]func() int64{}
	for _, r := range RefusalReasons() {
		fns[r] = func() int64 { return l.Refused(r) }
	}
	m.LabeledCounterFuncs("oshirase_"+service+"_documents_refused_total",
		"GraphQL documents refused with COMPLEXITY_LIMIT_EXCEEDED, by the bound they were over: tokens, selections, repeated_field, depth (MAX_QUERY_DEPTH), complexity (MAX_QUERY_COMPLEXITY).",
		"reason", fns)
	m.CounterFunc("oshirase_"+service+"_requests_too_large_total",
		"Requests refused with 413 REQUEST_TOO_LARGE: a body over the service's limit (pub: MAX_BODY_BYTES, sub: READ_LIMIT).", l.TooLarge)
}

// refuse counts a document refused for why (over limit) and logs it, at
// most once a second per reason. A nil Limits does neither.
func (l *Limits) refuse(why shape, limit int) {
	if l == nil {
		return
	}
	l.refused[why].Add(1)
	if ok, held := l.logged[why].Allow(); ok {
		l.log.Warn("document refused", "reason", refusalNames[why], "limit", limit, "not_logged_since_last", held)
	}
}

// RefuseBody counts a body refused with 413 by a handler of the service's
// own (sub's SSE streams, over READ_LIMIT) in TooLarge, and logs it as
// LimitBody does. Safe on a nil Limits.
func (l *Limits) RefuseBody() {
	if l == nil {
		return
	}
	l.refuseBody()
}

// refuseBody counts a body refused over MaxBodyBytes and logs it, at most
// once a second.
func (l *Limits) refuseBody() {
	l.tooLarge.Add(1)
	if ok, held := l.bodyLog.Allow(); ok {
		l.log.Warn("request refused: body too large", "reason", "body", "limit", l.cfg.MaxBodyBytes, "not_logged_since_last", held)
	}
}

// use gives gql the document checks, in their order: operationLimits
// before parsing (validated: the cache of documents that passed it), the
// complexity limit after validation.
func (l *Limits) use(gql settings, validated graphql.Cache[*ast.QueryDocument]) {
	gql.Use(operationLimits{maxTokens: MaxQueryTokens, maxSelections: MaxQuerySelections, maxRepeated: MaxRepeatedField,
		maxDepth: l.cfg.MaxDepth, validated: validated, counts: l})
	gql.Use(complexityLimit{ComplexityLimit: extension.FixedComplexityLimit(l.cfg.MaxComplexity), counts: l})
}

// complexityLimit is gqlgen's complexity extension, counted.
type complexityLimit struct {
	*extension.ComplexityLimit
	counts *Limits
}

// MutateOperationContext implements graphql.OperationContextMutator.
func (c complexityLimit) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	err := c.ComplexityLimit.MutateOperationContext(ctx, op)
	if err != nil {
		c.counts.refuse(tooComplexScore, c.counts.cfg.MaxComplexity)
	}
	return err
}
