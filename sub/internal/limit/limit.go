// Package limit decides whether sub takes one more stream (a WebSocket or
// an SSE request): at most MAX_CONNECTIONS on this instance, at most
// MAX_CONNECTIONS_PER_USER for one user of one tenant (jwt mode), and
// CONNECT_RATE new streams a second per client address. A refusal is
// answered before the upgrade — 503 or 429 with Retry-After and a GraphQL
// error body — counted, and logged (at most once a second per reason); a
// user over the cap whose identity is known only at connection_init is
// refused there (close 4429, by the transport).
//
// An admitted stream holds a Lease until its connection ends; the lease
// holds the instance slot and, once the user is known, the user's slot.
package limit

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/logging"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/service/ratelimit"
)

// Config configures Limits. A zero turns its limit off.
type Config struct {
	MaxConnections int     // MAX_CONNECTIONS: streams open on this instance
	MaxPerUser     int     // MAX_CONNECTIONS_PER_USER: streams of one tenant's user
	ConnectRate    float64 // CONNECT_RATE: new streams a second per client address
	ConnectBurst   int     // CONNECT_BURST: new streams at once per client address (≥ 1)
	// Proxies (TRUSTED_PROXIES) may say, in X-Forwarded-For, which client
	// they forward.
	Proxies ratelimit.Proxies
	// FullRetry is the Retry-After of a 503 at MAX_CONNECTIONS. Default 5s.
	FullRetry time.Duration
	Logger    *slog.Logger
}

// Limits counts streams and refusals. Safe for concurrent use.
type Limits struct {
	cfg  Config
	log  *slog.Logger
	rate *ratelimit.Keyed // nil: no connect rate

	open atomic.Int64 // streams holding a lease

	mu    sync.Mutex
	users map[string]int // open streams per user key

	// Refusals, by reason.
	full, userCap, rateHit    atomic.Int64
	fullLog, userLog, rateLog logging.Throttle
}

// Stats are the refusals counted so far.
type Stats struct {
	Open        int64 // streams holding a lease now
	Full        int64 // refused at MAX_CONNECTIONS (503)
	UserCap     int64 // refused at MAX_CONNECTIONS_PER_USER (429 or close 4429)
	ConnectRate int64 // refused over CONNECT_RATE (429)
}

// New returns Limits enforcing cfg.
func New(cfg Config) *Limits {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FullRetry <= 0 {
		cfg.FullRetry = 5 * time.Second
	}
	l := &Limits{cfg: cfg, log: cfg.Logger.With("component", "limit"), users: map[string]int{}}
	if cfg.ConnectRate > 0 {
		l.rate = ratelimit.NewKeyed(cfg.ConnectRate, cfg.ConnectBurst, 0)
	}
	return l
}

// Stats returns the counters.
func (l *Limits) Stats() Stats {
	return Stats{Open: l.open.Load(), Full: l.full.Load(), UserCap: l.userCap.Load(), ConnectRate: l.rateHit.Load()}
}

// Lease is one admitted stream's hold on its slots.
type Lease struct {
	l    *Limits
	mu   sync.Mutex
	user string // "" until the user is known
	done bool
}

type leaseKey struct{}

// FromContext returns the lease Admit put in a request's context.
func FromContext(ctx context.Context) *Lease {
	le, _ := ctx.Value(leaseKey{}).(*Lease)
	return le
}

// WithLease carries le in ctx (what a WebSocket keeps of its upgrade
// request, for connection_init).
func WithLease(ctx context.Context, le *Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, le)
}

// Admit decides whether r may open a stream, in order: the client
// address's connect rate (429), the instance's MAX_CONNECTIONS (503), and
// — when user is not "" (the caller is known from a header or cookie) —
// the user's MAX_CONNECTIONS_PER_USER (429). A refusal is answered on w.
// An admitted request's context carries its Lease; release it when its
// stream ends.
func (l *Limits) Admit(w http.ResponseWriter, r *http.Request, user string) (context.Context, *Lease, bool) {
	if l.rate != nil {
		addr := l.cfg.Proxies.ClientAddr(r)
		if ok, wait := l.rate.Allow(addr, 1); !ok {
			l.rateHit.Add(1)
			if ok, held := l.rateLog.Allow(); ok {
				l.log.Warn("connection refused: over CONNECT_RATE", "reason", "connect_rate", "client", addr, "limit", l.cfg.ConnectRate, "not_logged_since_last", held)
			}
			ratelimit.SetRetryAfter(w.Header(), wait)
			errkind.WriteHTTP(w, http.StatusTooManyRequests, errkind.CodeRateLimited,
				fmt.Sprintf("too many new connections from this address (CONNECT_RATE %g/s); retry after %d s", l.cfg.ConnectRate, ratelimit.RetrySeconds(wait)))
			return nil, nil, false
		}
	}
	if n := l.open.Add(1); l.cfg.MaxConnections > 0 && n > int64(l.cfg.MaxConnections) {
		l.open.Add(-1)
		l.full.Add(1)
		if ok, held := l.fullLog.Allow(); ok {
			l.log.Warn("connection refused: MAX_CONNECTIONS reached", "reason", "max_connections", "limit", l.cfg.MaxConnections, "not_logged_since_last", held)
		}
		ratelimit.SetRetryAfter(w.Header(), l.cfg.FullRetry)
		errkind.WriteHTTP(w, http.StatusServiceUnavailable, errkind.CodeUnavailable,
			"this instance has as many connections as it takes; retry, another instance may take it")
		return nil, nil, false
	}
	le := &Lease{l: l}
	if user != "" {
		if err := le.Bind(user); err != nil {
			le.Release()
			w.Header().Set("Retry-After", "30")
			errkind.WriteHTTP(w, http.StatusTooManyRequests, errkind.CodeRateLimited, err.Error())
			return nil, nil, false
		}
	}
	return WithLease(r.Context(), le), le, true
}

// Bind gives the lease to user (a tenant's user, as a key), taking one of
// the user's MAX_CONNECTIONS_PER_USER slots, and giving back another
// user's slot it held (the token in connection_init may name someone else
// than the upgrade request's). Over the cap it holds no user slot and
// returns an error wrapping errkind.ErrRateLimited.
func (le *Lease) Bind(user string) error {
	if le == nil {
		return nil
	}
	l := le.l
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.done || le.user == user {
		return nil
	}
	l.mu.Lock()
	if le.user != "" {
		l.dropUser(le.user)
		le.user = ""
	}
	if l.cfg.MaxPerUser > 0 && l.users[user] >= l.cfg.MaxPerUser {
		l.mu.Unlock()
		l.userCap.Add(1)
		if ok, held := l.userLog.Allow(); ok {
			l.log.Warn("connection refused: MAX_CONNECTIONS_PER_USER reached", "reason", "max_connections_per_user", "limit", l.cfg.MaxPerUser, "not_logged_since_last", held)
		}
		return fmt.Errorf("%w: this user has %d connections open already (MAX_CONNECTIONS_PER_USER); close one", errkind.ErrRateLimited, l.cfg.MaxPerUser)
	}
	l.users[user]++
	l.mu.Unlock()
	le.user = user
	return nil
}

// dropUser gives back one of user's slots; l.mu held.
func (l *Limits) dropUser(user string) {
	if l.users[user]--; l.users[user] <= 0 {
		delete(l.users, user)
	}
}

// Release gives back the lease's slots; only the first call counts.
func (le *Lease) Release() {
	if le == nil {
		return
	}
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.done {
		return
	}
	le.done = true
	if le.user != "" {
		le.l.mu.Lock()
		le.l.dropUser(le.user)
		le.l.mu.Unlock()
		le.user = ""
	}
	le.l.open.Add(-1)
}

// Users is how many users hold a slot now.
func (l *Limits) Users() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// PerUser reports whether MAX_CONNECTIONS_PER_USER is on.
func (l *Limits) PerUser() bool { return l.cfg.MaxPerUser > 0 }

// Register serves the refusal counters on m, read at scrape time.
func (l *Limits) Register(m *metrics.Registry) {
	m.CounterFunc("oshirase_sub_connections_refused_max_total", "Streams refused with 503 at MAX_CONNECTIONS.", l.full.Load)
	m.CounterFunc("oshirase_sub_connections_refused_user_total", "Streams refused at MAX_CONNECTIONS_PER_USER (429, or close 4429 at connection_init).", l.userCap.Load)
	m.CounterFunc("oshirase_sub_connections_refused_rate_total", "Streams refused with 429 over CONNECT_RATE for their client address.", l.rateHit.Load)
}
