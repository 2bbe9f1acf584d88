// Package ratelimit keeps a token bucket (golang.org/x/time/rate) per key —
// a client address, a publisher credential — in a map bounded in size, and
// finds a request's client address behind trusted proxies. sub limits
// connects per client address with it, pub publishes per credential.
package ratelimit

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is how many keys a Keyed remembers per generation when
// its MaxKeys is zero: with two generations, at most 2×65,536 buckets (a
// few MiB).
const DefaultMaxKeys = 1 << 16

// Keyed is a token bucket per key. The map is bounded: keys live in two
// generations, and when the current one holds MaxKeys keys the older one
// is dropped and the current becomes the older one; a key found in the
// older generation moves to the current. A key forgotten that way starts
// again with a full bucket: only keys idle through a whole generation
// (MaxKeys other keys seen since) are forgotten, so a flood of distinct
// keys costs bounded memory and loosens the limit only for keys that were
// quiet anyway. Safe for concurrent use.
type Keyed struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	cur, prev map[string]*rate.Limiter
}

// NewKeyed returns buckets refilling at perSecond tokens a second and
// holding burst (at least 1); maxKeys is per generation (0:
// DefaultMaxKeys).
func NewKeyed(perSecond float64, burst, maxKeys int) *Keyed {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Keyed{limit: rate.Limit(perSecond), burst: max(burst, 1), max: maxKeys,
		cur: map[string]*rate.Limiter{}, prev: map[string]*rate.Limiter{}}
}

func (k *Keyed) bucket(key string) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.cur[key]; ok {
		return l
	}
	l, ok := k.prev[key]
	if ok {
		delete(k.prev, key)
	} else {
		l = rate.NewLimiter(k.limit, k.burst)
	}
	if len(k.cur) >= k.max {
		k.prev, k.cur = k.cur, make(map[string]*rate.Limiter, len(k.cur))
	}
	k.cur[key] = l
	return l
}

// Allow takes n tokens from key's bucket now, or none: when they are not
// there it reports how long until they will be (retry after that). n over
// the burst is never allowed (retryAfter is then -1).
func (k *Keyed) Allow(key string, n int) (ok bool, retryAfter time.Duration) {
	if n > k.burst {
		return false, -1
	}
	now := time.Now()
	r := k.bucket(key).ReserveN(now, n)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Keys is how many keys are remembered now (both generations).
func (k *Keyed) Keys() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cur) + len(k.prev)
}

// SetRetryAfter sets the Retry-After header to d in whole seconds, rounded
// up, at least 1.
func SetRetryAfter(h http.Header, d time.Duration) {
	h.Set("Retry-After", strconv.Itoa(RetrySeconds(d)))
}

// RetrySeconds is d in whole seconds, rounded up, at least 1.
func RetrySeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
