// Package publisher is pub's side of a notice before it reaches the bus:
// it checks the caller's input, names the audience's channel, stamps and
// encodes the message, and publishes it — one notice or a batch, with an
// idempotency key when the caller gives one — within PUBLISH_TIMEOUT.
package publisher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/oshirase/oshirase/bus"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/wire"
)

// ErrInvalid is wrapped by errors about the caller's input.
var ErrInvalid = errkind.ErrBadInput

// Config configures a Publisher.
type Config struct {
	// Bus publishes. Required; a go-redis client behind it needs
	// ContextTimeoutEnabled (envconf.RedisOptions sets it, bus.NewRedis
	// insists), or Timeout does not bound a Redis that stops answering.
	Bus bus.BatchPublisher
	// MaxTextBytes is the longest text accepted. Default: 4096.
	MaxTextBytes int
	// MaxBatch is the most notices one PublishBatch takes. Default: 1000.
	MaxBatch int
	// Timeout bounds one publish or one batch, retries included. Default: 3s.
	Timeout time.Duration
	// IdempotencyTTL is how long an idempotency key is remembered: a retry
	// with the key within it publishes nothing and answers the first
	// publish. Default: 24h.
	IdempotencyTTL time.Duration
	// Now stamps the publish time. Default: time.Now.
	Now func() time.Time
	// Duration observes the seconds each call to the bus takes (one notice
	// or a whole batch, retries included), failed ones too. Default:
	// nothing is observed.
	Duration metrics.Observer
}

// Notice is one notice to publish, its audience already resolved (the
// caller may address it).
type Notice struct {
	Tenant string
	Scope  wire.Scope
	To     string // user or store; empty for company and public
	Text   string
	// IdempotencyKey, when not empty, makes the publish happen at most
	// once per credential, audience and key within IdempotencyTTL.
	IdempotencyKey string
}

// Result is what publishing one notice did.
type Result struct {
	// Received is how many live subscriptions received the notice.
	Received int
	// Msg is the notice as subscribers see it (with its history position
	// when history is on); for a retry, the first publish's.
	Msg *wire.Message
	// Err is why the notice was not published; the rest is then zero.
	Err error
}

// Publisher implements graph.Publisher on the bus.
type Publisher struct {
	cfg Config
	// Published, Delivered and Failed count notices put on Redis, the live
	// subscriptions that received them, and publishes Redis did not take;
	// Repeats counts retries answered from an idempotency key.
	Published, Delivered, Failed, Repeats atomic.Int64

	coal coalescer
}

// New returns a Publisher.
func New(cfg Config) *Publisher {
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 4096
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Duration = metrics.Or(cfg.Duration)
	return &Publisher{cfg: cfg}
}

// Publish publishes one notice for the caller holding credential (see
// PublishBatch) and answers how many live subscriptions received it and
// the message as subscribers see it.
func (p *Publisher) Publish(ctx context.Context, credential string, n Notice) (int, *wire.Message, error) {
	res, err := p.PublishBatch(ctx, credential, []Notice{n})
	if err != nil {
		return 0, nil, err
	}
	return res[0].Received, res[0].Msg, res[0].Err
}

// CheckBatch refuses a batch of n inputs over MaxBatch, counting every
// input the caller sent (one refused for access too): the whole call
// fails, nothing is published.
func (p *Publisher) CheckBatch(n int) error {
	if n > p.cfg.MaxBatch {
		return fmt.Errorf("%w: a batch takes at most %d notices (MAX_BATCH), got %d: split it", ErrInvalid, p.cfg.MaxBatch, n)
	}
	return nil
}

// PublishBatch publishes up to MaxBatch notices in one round trip to
// Redis and answers one Result per notice, in order: a notice that is
// refused (bad input, a reused idempotency key) or not taken by Redis in
// time fails alone. credential names the caller's credential (an API
// key, a token's subject); only a digest of it reaches Redis, in the
// idempotency keys, so that two callers' keys never meet.
func (p *Publisher) PublishBatch(ctx context.Context, credential string, ns []Notice) ([]Result, error) {
	if err := p.CheckBatch(len(ns)); err != nil {
		return nil, err
	}
	out := make([]Result, len(ns))
	notices := make([]bus.Notice, 0, len(ns))
	index := make([]int, 0, len(ns)) // notices[j] is ns[index[j]]
	var cred string
	for i, n := range ns {
		bn, msg, err := p.prepare(n, &cred, credential)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Msg = msg
		notices = append(notices, bn)
		index = append(index, i)
	}
	if len(notices) == 0 {
		return out, nil
	}
	// Once begun, a publish runs to its end or to Timeout, whether or not
	// the caller is still there: whether a notice went out must not depend
	// on when a client hung up.
	start := time.Now()
	var outcomes []bus.Outcome
	if len(notices) == 1 {
		outcomes = []bus.Outcome{p.publishOne(notices[0])}
	} else {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
		defer cancel()
		outcomes = p.cfg.Bus.PublishBatch(ctx, notices)
	}
	p.cfg.Duration.Observe(time.Since(start).Seconds())
	for j, o := range outcomes {
		r := &out[index[j]]
		if o.Err != nil {
			if !errors.Is(o.Err, errkind.ErrBadInput) {
				p.Failed.Add(1)
			}
			r.Msg, r.Err = nil, fmt.Errorf("publisher: %w", o.Err)
			continue
		}
		r.Received = o.Receivers
		if o.Repeat {
			p.Repeats.Add(1)
			r.Msg.ID, r.Msg.TS = o.ID, o.TS
		} else {
			p.Published.Add(1)
			p.Delivered.Add(int64(o.Receivers))
		}
		r.Msg.Pos, r.Msg.Epoch = "", ""
		if !o.Pos.ID.IsZero() {
			r.Msg.Pos, r.Msg.Epoch = o.Pos.ID.String(), o.Pos.Epoch
		}
	}
	return out, nil
}

// prepare checks n and makes its message and the bus's notice. cred is
// the digest of credential, made on first need.
func (p *Publisher) prepare(n Notice, cred *string, credential string) (bus.Notice, *wire.Message, error) {
	switch {
	case n.Text == "":
		return bus.Notice{}, nil, fmt.Errorf("%w: text is empty", ErrInvalid)
	case len(n.Text) > p.cfg.MaxTextBytes:
		return bus.Notice{}, nil, fmt.Errorf("%w: text is %d bytes, the limit is %d", ErrInvalid, len(n.Text), p.cfg.MaxTextBytes)
	case !utf8.ValidString(n.Text):
		return bus.Notice{}, nil, fmt.Errorf("%w: text is not valid UTF-8", ErrInvalid)
	}
	ch, err := wire.NewChannel(n.Tenant, n.Scope, n.To)
	if err != nil {
		return bus.Notice{}, nil, fmt.Errorf("%w: to: %w", ErrInvalid, err)
	}
	if n.IdempotencyKey != "" {
		if err := wire.ValidateName("idempotencyKey", n.IdempotencyKey, wire.MaxIdempotencyKeyBytes); err != nil {
			return bus.Notice{}, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	msg, err := wire.NewMessage(n.Text, n.Scope, p.cfg.Now())
	if err != nil {
		return bus.Notice{}, nil, err
	}
	payload, err := msg.Encode()
	if err != nil {
		return bus.Notice{}, nil, err
	}
	bn := bus.Notice{Channel: ch, Payload: payload}
	if n.IdempotencyKey != "" {
		if *cred == "" {
			*cred = digest(credential)
		}
		bn.Idempotency = &bus.Idempotency{
			Key:         ch.IdempotencyKey(*cred, n.IdempotencyKey),
			Fingerprint: digest(n.Tenant, string(n.Scope), n.To, n.Text),
			ID:          msg.ID,
			TS:          msg.TS,
			TTL:         p.cfg.IdempotencyTTL,
		}
	}
	return bn, msg, nil
}

// digest is 128 bits of SHA-256 over parts, each length-prefixed (so no
// two lists of parts share one), in hex.
func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
