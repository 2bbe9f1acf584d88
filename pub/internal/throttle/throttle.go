// Package throttle holds each publisher to PUBLISH_RATE: a token bucket per
// credential (an API key, a publisher token's tenant and subject; in
// AUTH_MODE=none, a client address), one token per publish. A mutation
// that would take more tokens than its caller has is refused before it
// runs — all of its publishes, never some — with RATE_LIMITED, HTTP 429 and
// Retry-After; the refusal is counted and logged (at most once a second).
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/oshirase/oshirase/service/auth"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/ratelimit"
)

// Config configures a Throttle.
type Config struct {
	Rate  float64 // PUBLISH_RATE: publishes a second per credential (> 0)
	Burst int     // PUBLISH_BURST: publishes at once per credential (≥ 1)
	// Anonymous: callers carry no credential (AUTH_MODE=none), so each
	// client address (Proxies: TRUSTED_PROXIES) is one publisher.
	Anonymous bool
	Proxies   ratelimit.Proxies
	Logger    *slog.Logger
}

// Throttle is both halves: Middleware names the caller of each request,
// and the gqlgen extension (Use it on the handler) takes the tokens of a
// mutation.
type Throttle struct {
	cfg     Config
	buckets *ratelimit.Keyed
	log     *slog.Logger
	refused atomic.Int64
	logged  logging.Throttle
}

// New returns a Throttle for cfg.
func New(cfg Config) *Throttle {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Throttle{cfg: cfg, buckets: ratelimit.NewKeyed(cfg.Rate, cfg.Burst, 0), log: cfg.Logger.With("component", "throttle")}
}

// Refused counts the requests refused so far.
func (t *Throttle) Refused() int64 { return t.refused.Load() }

// ticket is one request's caller and, once refused, how long it should
// wait.
type ticket struct {
	key   string
	retry time.Duration // > 0: refused
}

type ticketKey struct{}

// Middleware names each request's caller for the extension and answers a
// refused one with 429 and Retry-After. Put it after authentication.
func (t *Throttle) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		tk := &ticket{key: t.caller(r)}
		next.ServeHTTP(&statusWriter{ResponseWriter: w, t: tk}, r.WithContext(context.WithValue(r.Context(), ticketKey{}, tk)))
	})
}

// caller is the rate-limit key of r's credential.
func (t *Throttle) caller(r *http.Request) string {
	if t.cfg.Anonymous {
		return "addr " + t.cfg.Proxies.ClientAddr(r)
	}
	id, _ := auth.FromContext(r.Context())
	if id.ExpiresAt.IsZero() { // an API key: the key itself, hashed
		sum := sha256.Sum256([]byte(auth.TokenFromRequest(r, "")))
		return "key " + hex.EncodeToString(sum[:16])
	}
	return "token " + id.Tenant + "\x00" + id.User // a token's successors share its bucket
}

// statusWriter turns the status of a refused request into 429.
type statusWriter struct {
	http.ResponseWriter
	t           *ticket
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if w.t.retry > 0 {
		ratelimit.SetRetryAfter(w.Header(), w.t.retry)
		code = http.StatusTooManyRequests
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = (*Throttle)(nil)

// ExtensionName implements graphql.HandlerExtension.
func (*Throttle) ExtensionName() string { return "PublishRate" }

// Validate implements graphql.HandlerExtension.
func (*Throttle) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext takes one token per publish of a mutation (its
// root fields after @skip/@include, each input of a publishBatch), all or
// none, before anything runs.
func (t *Throttle) MutateOperationContext(ctx context.Context, op *graphql.OperationContext) *gqlerror.Error {
	tk, _ := ctx.Value(ticketKey{}).(*ticket)
	if tk == nil || op.Operation == nil || op.Operation.Operation != ast.Mutation {
		return nil
	}
	n := 0
	for _, f := range graphql.CollectFields(op, op.Operation.SelectionSet, []string{"Mutation"}) {
		n += publishes(f, op.Variables)
	}
	if n == 0 {
		return nil
	}
	ok, wait := t.buckets.Allow(tk.key, n)
	if ok {
		return nil
	}
	t.refused.Add(1)
	if logOK, held := t.logged.Allow(); logOK {
		t.log.Warn("publish refused: over PUBLISH_RATE", "reason", "publish_rate", "publishes", n, "rate", t.cfg.Rate, "burst", t.cfg.Burst, "not_logged_since_last", held)
	}
	var e *gqlerror.Error
	if wait < 0 { // more than a full bucket: never possible as one request
		tk.retry = time.Second
		e = gqlerror.Errorf("this request publishes %d notices, more than PUBLISH_BURST (%d) allows at once; split it", n, t.cfg.Burst)
	} else {
		tk.retry = wait
		e = gqlerror.Errorf("over this credential's publish rate (PUBLISH_RATE %g/s); retry after %d s", t.cfg.Rate, ratelimit.RetrySeconds(wait))
	}
	e.Extensions = map[string]any{"code": errkind.CodeRateLimited}
	return e
}

// publishes is how many notices root field f publishes: each input of a
// publishBatch (a single object where the list is expected is one, as
// GraphQL's input coercion makes it), one for any other mutation field,
// none for __typename. An inputs variable that is missing or not a list is
// one: validation refuses it before anything runs.
func publishes(f graphql.CollectedField, vars map[string]any) int {
	switch {
	case strings.HasPrefix(f.Name, "__"):
		return 0
	case f.Name == "publishBatch":
		if inputs, ok := f.ArgumentMap(vars)["inputs"].([]any); ok {
			return len(inputs)
		}
	}
	return 1
}

// String describes the limit for the start log.
func (t *Throttle) String() string { return fmt.Sprintf("%g/s, burst %d", t.cfg.Rate, t.cfg.Burst) }
