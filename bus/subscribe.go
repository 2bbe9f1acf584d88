package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// Subscribe implements Subscriber.
func (b *Redis) Subscribe(ctx context.Context, chs []wire.Channel) error {
	if b.ps == nil {
		return ErrPublishOnly
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	// One round takes up every channel of the subscription: their counts
	// are written together, so none reports a subscription that may still
	// fail on another channel.
	for _, ch := range chs {
		b.refs[ch]++
		b.dirty[ch] = struct{}{}
	}
	r := b.next
	b.mu.Unlock()
	b.poke()

	for {
		select {
		case <-r.done:
			if r.err == nil {
				return nil
			}
			// The round failed and put chs back for the next one.
			b.mu.Lock()
			r = b.next
			b.mu.Unlock()
		case <-ctx.Done():
			b.Unsubscribe(chs)
			return fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
		}
	}
}

// Unsubscribe implements Subscriber.
func (b *Redis) Unsubscribe(chs []wire.Channel) {
	b.mu.Lock()
	for _, ch := range chs {
		if n := b.refs[ch] - 1; n > 0 {
			b.refs[ch] = n
		} else {
			delete(b.refs, ch)
		}
		b.dirty[ch] = struct{}{}
	}
	b.mu.Unlock()
	b.poke()
}

// Channels returns how many channels have local subscribers.
func (b *Redis) Channels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.refs)
}

func (b *Redis) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// receive reads the Pub/Sub connection until Close. go-redis reconnects and
// re-subscribes on its own; confirmations it did not ask for mean exactly
// that, and trigger a rewrite of every count (Redis may have restarted and
// lost them).
//
// A silent connection is pinged every HealthInterval. A PING still
// unanswered at the next one marks the connection down: a Redis that
// accepts bytes and never answers (stopped, or stuck in a long script) must
// not look healthy, as a socket write to it still succeeds.
func (b *Redis) receive() {
	defer close(b.recvDone)
	ctx := context.Background() // Close ends the reads by closing the connection
	backoff := 50 * time.Millisecond
	// Connect now rather than at the first SUBSCRIBE: readiness reports the
	// connection, and the PONG proves it.
	_ = b.ps.Ping(ctx)
	pinged := true // a PING is out: silence until the next read is suspect
	for {
		msg, err := b.ps.ReceiveTimeout(ctx, b.cfg.HealthInterval)
		if err != nil {
			select {
			case <-b.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged {
					b.setHealthy(false, errNoPong)
				}
				// Silence: ask for a PONG. A dead connection fails the next read.
				if perr := b.ps.Ping(ctx); perr != nil {
					b.setHealthy(false, perr)
				}
				pinged = true
				continue
			}
			b.setHealthy(false, err)
			select {
			case <-b.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		pinged = false
		b.setHealthy(true, nil)
		switch m := msg.(type) {
		case *redis.Message:
			b.cfg.Handler(wire.Channel(m.Channel), []byte(m.Payload))
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				b.confirm(wire.Channel(m.Channel))
			}
		}
	}
}

// errNoPong is why a connection that stopped answering counts as down.
var errNoPong = errors.New("bus: redis did not answer a PING within the health interval")

func (b *Redis) setHealthy(ok bool, err error) {
	if b.healthy.Swap(ok) != ok {
		if ok {
			b.log.Info("redis pub/sub connected")
		} else {
			b.log.Warn("redis pub/sub connection lost; reconnecting", "err", err)
		}
	}
}

// expect notes SUBSCRIBEs about to be sent.
func (b *Redis) expect(chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		b.unconfirmd[ch]++
	}
	b.confirmMu.Unlock()
}

// forget drops pending confirmations of channels about to be unsubscribed:
// go-redis will not re-subscribe them, so those confirmations may never come.
func (b *Redis) forget(chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		delete(b.unconfirmd, ch)
	}
	b.confirmMu.Unlock()
}

func (b *Redis) confirm(ch wire.Channel) {
	b.confirmMu.Lock()
	n, asked := b.unconfirmd[ch]
	if n > 1 {
		b.unconfirmd[ch] = n - 1
	} else if asked {
		delete(b.unconfirmd, ch)
	}
	close(b.confirmed)
	b.confirmed = make(chan struct{})
	b.confirmMu.Unlock()
	if !asked {
		// A re-subscription after go-redis reconnected.
		b.mu.Lock()
		b.resync = true
		b.mu.Unlock()
		b.poke()
	}
}

// awaitConfirmed waits until none of chs has an unconfirmed SUBSCRIBE.
func (b *Redis) awaitConfirmed(ctx context.Context, chs []wire.Channel) error {
	for {
		b.confirmMu.Lock()
		pending := false
		for _, ch := range chs {
			if b.unconfirmd[ch] > 0 {
				pending = true
				break
			}
		}
		wait := b.confirmed
		b.confirmMu.Unlock()
		if !pending {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("%w: no SUBSCRIBE confirmation: %w", ErrUnavailable, ctx.Err())
		}
	}
}
