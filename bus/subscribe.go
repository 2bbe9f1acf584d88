package bus

import (
	"context"
	"fmt"

	"github.com/oshirase/oshirase/wire"
)

// Subscribe implements Subscriber.
func (b *Redis) Subscribe(ctx context.Context, chs []wire.Channel) error {
	if b.cfg.Handler == nil {
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
		case <-b.done:
			// Closed while waiting: no round runs any more to answer.
			b.Unsubscribe(chs)
			return ErrClosed
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

// expect notes SUBSCRIBEs about to be sent on s.
func (b *Redis) expect(s *shard, chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		p := b.unconfirmd[ch]
		if p.s != s {
			p = pending{s: s} // the channel moved: the old shard's no longer count
		}
		p.n++
		b.unconfirmd[ch] = p
	}
	b.confirmMu.Unlock()
}

// expectOnce notes that chs are about to be subscribed on a fresh
// connection of s, once each: whatever was pending for them (sent on the
// connection it replaces, or not sent yet) is settled by this one.
func (b *Redis) expectOnce(s *shard, chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		b.unconfirmd[ch] = pending{s: s, n: 1}
	}
	b.confirmMu.Unlock()
}

// forget drops pending confirmations of channels about to be unsubscribed
// from s: go-redis will not re-subscribe them, so those confirmations may
// never come.
func (b *Redis) forget(s *shard, chs []wire.Channel) {
	b.confirmMu.Lock()
	for _, ch := range chs {
		if b.unconfirmd[ch].s == s {
			delete(b.unconfirmd, ch)
		}
	}
	b.confirmMu.Unlock()
}

// confirm takes a SUBSCRIBE confirmation from s. One that was not asked
// for is go-redis's re-subscription after it reconnected: every count is
// rewritten (Redis may have restarted and lost them).
func (b *Redis) confirm(s *shard, ch wire.Channel, probe bool) {
	b.confirmMu.Lock()
	p, asked := b.unconfirmd[ch]
	asked = asked && p.s == s
	if asked && p.n > 1 {
		p.n--
		b.unconfirmd[ch] = p
	} else if asked {
		delete(b.unconfirmd, ch)
	}
	close(b.confirmed)
	b.confirmed = make(chan struct{})
	b.confirmMu.Unlock()
	if !asked && !probe {
		b.requestResync()
	}
}

// requestResync has the next round rewrite every count.
func (b *Redis) requestResync() {
	b.mu.Lock()
	b.resync = true
	b.mu.Unlock()
	b.poke()
}

// awaitConfirmed waits until none of chs has an unconfirmed SUBSCRIBE.
func (b *Redis) awaitConfirmed(ctx context.Context, chs []wire.Channel) error {
	for {
		b.confirmMu.Lock()
		pending := false
		for _, ch := range chs {
			if b.unconfirmd[ch].n > 0 {
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
