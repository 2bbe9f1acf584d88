// Package publisher is pub's side of a notice before it reaches the bus:
// it checks the caller's input, names the audience's channel, stamps and
// encodes the message, and publishes it within PUBLISH_TIMEOUT.
package publisher

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/oshirase/oshirase/bus"

	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

// ErrInvalid is wrapped by errors about the caller's input.
var ErrInvalid = errkind.ErrBadInput

// Config configures a Publisher.
type Config struct {
	// Bus publishes. Required; a go-redis client behind it needs
	// ContextTimeoutEnabled (envconf.RedisOptions sets it, bus.NewRedis
	// insists), or Timeout does not bound a Redis that stops answering.
	Bus bus.Publisher
	// MaxTextBytes is the longest text accepted. Default: 4096.
	MaxTextBytes int
	// Timeout bounds one publish, retries included. Default: 3s.
	Timeout time.Duration
	// Now stamps the publish time. Default: time.Now.
	Now func() time.Time
}

// Publisher implements graph.Publisher on the bus.
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
// subscriptions received it, and the message as subscribers see it (with
// its history position when history is on).
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
	res, err := p.cfg.Bus.Publish(ctx, ch, payload)
	if err != nil {
		p.Failed.Add(1)
		return 0, nil, fmt.Errorf("publisher: %w", err)
	}
	p.Published.Add(1)
	p.Delivered.Add(int64(res.Receivers))
	msg.Pos, msg.Epoch = "", ""
	if !res.Pos.ID.IsZero() {
		msg.Pos, msg.Epoch = res.Pos.ID.String(), res.Pos.Epoch
	}
	return res.Receivers, msg, nil
}
