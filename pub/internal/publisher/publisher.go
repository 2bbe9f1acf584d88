// Package publisher puts notices on Redis: one message on the audience's
// channel, published atomically with the count of live subscriptions that
// read it.
package publisher

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
	"github.com/oshirase/oshirase/wire/service"
)

// ErrInvalid is wrapped by errors about the caller's input.
var ErrInvalid = service.ErrBadInput

// ErrUnavailable is wrapped when Redis does not answer in time.
var ErrUnavailable = fmt.Errorf("publisher: redis: %w", service.ErrUnavailable)

// Config configures a Publisher.
type Config struct {
	// Client publishes. Required; a go-redis client needs
	// ContextTimeoutEnabled (service.RedisOptions sets it), or Timeout does
	// not bound a Redis that stops answering.
	Client redis.Scripter
	// MaxTextBytes is the longest text accepted. Default: 4096.
	MaxTextBytes int
	// Timeout bounds one publish, retries included. Default: 3s.
	Timeout time.Duration
	// Now stamps the publish time. Default: time.Now.
	Now func() time.Time
}

// Publisher implements graph.Publisher on Redis.
type Publisher struct {
	cfg Config
	// Published, Delivered and Failed count notices put on Redis, the live
	// subscriptions that received them, and publishes Redis did not take.
	Published, Delivered, Failed atomic.Int64
}

// New returns a Publisher.
func New(cfg Config) *Publisher {
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 4096
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Publisher{cfg: cfg}
}

// Publish sends text to (tenant, scope, to) and answers how many live
// subscriptions received it.
func (p *Publisher) Publish(ctx context.Context, tenant string, scope wire.Scope, to, text string) (int, *wire.Message, error) {
	switch {
	case text == "":
		return 0, nil, fmt.Errorf("%w: text is empty", ErrInvalid)
	case len(text) > p.cfg.MaxTextBytes:
		return 0, nil, fmt.Errorf("%w: text is %d bytes, the limit is %d", ErrInvalid, len(text), p.cfg.MaxTextBytes)
	case !utf8.ValidString(text):
		return 0, nil, fmt.Errorf("%w: text is not valid UTF-8", ErrInvalid)
	}
	ch, err := wire.NewChannel(tenant, scope, to)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: to: %w", ErrInvalid, err)
	}
	msg, err := wire.NewMessage(text, scope, p.cfg.Now())
	if err != nil {
		return 0, nil, err
	}
	payload, err := msg.Encode()
	if err != nil {
		return 0, nil, err
	}
	// Once begun, a publish runs to its end or to Timeout, whether or not
	// the caller is still there: whether a notice went out must not depend
	// on when a client hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	n, err := wire.PublishScript.Run(ctx, p.cfg.Client, []string{ch.CountKey()}, string(ch), payload).Int()
	if err != nil {
		p.Failed.Add(1)
		return 0, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	p.Published.Add(1)
	p.Delivered.Add(int64(n))
	return n, msg, nil
}
