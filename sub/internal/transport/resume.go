package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// A subscription's cursor is a position per channel it reads: the last
// notice of that channel it was sent. It starts where the client's after
// cursor says, or, for a fresh subscription, where each history stood just
// before the subscription went live (startFresh); every notice sent moves
// its channel's position to the notice's own, and the cursor of a notice
// is the positions just after it, encoded (sub/internal/cursor, the same
// form as the list's edge cursors).
//
// Catching up, for a subscription resuming after a cursor: it is live on
// the bus first, and the live notices that come meanwhile are buffered.
// Then the history after the cursor is read, what it holds is sent in
// cursor order, then the buffered notices the history did not already
// hold, then the live ones as they come: no gap, no duplicate.

// liveNotice is a live notice that came while the subscription caught up.
type liveNotice struct {
	ch      int
	m       *wire.Message
	payload []byte
}

// historyTimeout bounds a catch-up's history read, its wait for its turn
// included: in a reconnect storm every subscription's read queues behind
// the others' (the bus sends them in batches), and a read that gives up
// fails its subscription with UNAVAILABLE, whose client then comes back
// and queues again. The subscription is already live on the bus, so Redis
// answered a moment ago; the bound is for one that stopped answering.
const historyTimeout = 30 * time.Second

// errNoHistory answers an after cursor on a server that keeps no history.
var errNoHistory = fmt.Errorf("transport: %w: no history is kept", errkind.ErrCursorExpired)

// decodeAfter reads a subscription's after cursor against its channels.
func (s *Server) decodeAfter(after *string, chs []wire.Channel) (*cursor.Cursor, error) {
	if after == nil {
		return nil, nil
	}
	c, err := cursor.Decode(*after, chs)
	if err != nil {
		return nil, err
	}
	if s.cfg.History == nil {
		return nil, errNoHistory
	}
	return &c, nil
}

// Send implements hub.Sink: a live notice, buffered while the
// subscription catches up.
func (op *operation) Send(ch wire.Channel, m *wire.Message, payload []byte) hub.Verdict {
	i := slices.Index(op.chs, ch)
	op.rmu.Lock()
	defer op.rmu.Unlock()
	if !op.live {
		if op.done.Load() {
			return hub.Gone
		}
		if len(op.buffered) >= op.c.srv.cfg.QueueSize {
			op.c.slow("slow consumer: more than QUEUE_SIZE notices came while catching up")
			return hub.Refused
		}
		op.buffered = append(op.buffered, liveNotice{ch: i, m: m, payload: payload})
		return hub.Sent
	}
	if op.sent(i, m) {
		// Published while the history was read: the replay sent it, and
		// its live copy came after.
		return hub.Sent
	}
	return op.send(i, m, payload, false, true)
}

// send queues one notice of channel i with its cursor; op.rmu is held.
// live: the hub delivered it (its lag is observed), not the history.
func (op *operation) send(i int, m *wire.Message, payload []byte, replay, live bool) hub.Verdict {
	holes, cur := 0, ""
	hole := op.c.srv.cfg.CursorHole
	if len(hole) > 0 {
		holes = bytes.Count(payload, hole)
	}
	if i >= 0 && op.vec != nil && m.Pos != "" {
		if id, err := bus.ParseStreamID(m.Pos); err == nil {
			op.vec[i] = bus.Position{Epoch: m.Epoch, ID: id}
			if holes > 0 || op.c.proto == protoSSE {
				cur = op.cursor(i)
			}
		}
	}
	var ts int64
	if live {
		ts = m.TS
	}
	return op.c.sendData(op, payload, holes, cur, replay, ts)
}

// cursor encodes op.vec after a notice of channel at; "" while a channel
// has no epoch (history off).
func (op *operation) cursor(at int) string {
	for _, p := range op.vec {
		if p.Epoch == "" {
			return ""
		}
	}
	return cursor.Encode(op.chs, cursor.Cursor{Pos: op.vec, At: at})
}

// sent reports whether the notice of channel i at pos is at or before
// where the cursor stands (it was sent, or the client had it).
func (op *operation) sent(i int, m *wire.Message) bool {
	if i < 0 || op.vec == nil || m.Pos == "" || op.vec[i].Epoch != m.Epoch {
		return false
	}
	id, err := bus.ParseStreamID(m.Pos)
	return err == nil && id.Compare(op.vec[i].ID) <= 0
}

// startFresh readies a subscription without a cursor before it goes live
// on the bus: its cursors start at its channels' heads, read now, and every
// notice that comes live is sent. Reading the heads after the SUBSCRIBE
// instead would race with the notices published in between: the head
// read can hold one whose live copy is still on its way, and that copy
// would then look sent already. Here nothing live is older than the heads
// (a notice is appended and published in one step), except one already on
// its way to an instance that read the channel before: that one was
// published before this subscription began, and the cursor never claims
// anything it did not send or that was not before the start.
//
// The read is bounded like the SUBSCRIBE that follows (the hub's
// SubscribeTimeout): a subscription's start fails with UNAVAILABLE as
// quickly whichever of the two Redis does not answer, and a read Redis
// failed is tried again meanwhile.
func (s *Server) startFresh(op *operation) error {
	var vec []bus.Position
	if s.cfg.History != nil {
		ctx, cancel := context.WithTimeout(op.ctx, s.cfg.Hub.SubscribeTimeout())
		defer cancel()
		err := retryUnavailable(ctx, op.ended, func() error {
			var err error
			vec, err = s.cfg.History.Head(ctx, op.chs)
			return err
		})
		if err != nil {
			return err
		}
	}
	op.rmu.Lock()
	op.vec, op.live = vec, true
	op.rmu.Unlock()
	return nil
}

// catchUp runs once a subscription resuming after a cursor is live on the
// bus: it reads the history after the cursor, sends what the client
// missed, then what was buffered meanwhile and the history did not hold,
// and lets live notices through.
func (s *Server) catchUp(op *operation, after *cursor.Cursor) error {
	var replay []liveNotice
	ctx, cancel := context.WithTimeout(op.ctx, historyTimeout)
	defer cancel()
	// Redis may go away between the subscription's SUBSCRIBE and this
	// read: a read it failed is tried again (the bus reconnects by itself)
	// until the subscription's history bound, so that a blip does not end
	// subscriptions that were being set up.
	err := retryUnavailable(ctx, op.ended, func() error {
		var err error
		replay, err = s.replay(ctx, op, after)
		return err
	})
	if err != nil {
		return err
	}
	op.rmu.Lock()
	defer op.rmu.Unlock()
	op.vec = slices.Clone(after.Pos)
	for _, n := range replay {
		if op.send(n.ch, n.m, n.payload, true, false) != hub.Sent {
			return nil // the connection is gone or closing
		}
	}
	for _, n := range op.buffered {
		if op.sent(n.ch, n.m) {
			continue // the history held it: sent already
		}
		if op.send(n.ch, n.m, n.payload, true, true) != hub.Sent {
			return nil
		}
	}
	op.buffered, op.live = nil, true
	return nil
}

// retryUnavailable runs read until it succeeds, fails for another reason
// than an unavailable Redis, or ctx ends or ended is closed (the
// operation ended), waiting between tries (100 ms, doubling up to 1 s).
// It answers read's last error.
func retryUnavailable(ctx context.Context, ended <-chan struct{}, read func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := read()
		if err == nil || !errors.Is(err, bus.ErrUnavailable) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-ended:
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// replay reads every notice after c, merged across channels in cursor
// order, rendered in op's shape.
func (s *Server) replay(ctx context.Context, op *operation, c *cursor.Cursor) ([]liveNotice, error) {
	entries, err := s.cfg.History.Since(ctx, op.chs, c.Pos)
	if err != nil {
		return nil, err
	}
	type item struct {
		ch, kind int
		e        bus.Entry
	}
	var items []item
	for i, es := range entries {
		for _, e := range es {
			items = append(items, item{i, cursor.Kind(op.chs[i]), e})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if cursor.Before(a.e.Pos.ID, a.kind, b.e.Pos.ID, b.kind) {
			return -1
		}
		if cursor.Before(b.e.Pos.ID, b.kind, a.e.Pos.ID, a.kind) {
			return 1
		}
		return 0
	})
	op.mu.Lock()
	shape := op.shape
	op.mu.Unlock()
	if shape == nil {
		return nil, nil // ended meanwhile
	}
	out := make([]liveNotice, 0, len(items))
	for _, it := range items {
		m, err := wire.Decode(it.e.Payload)
		if err != nil {
			s.log.Warn("skipping a malformed notice in the history", "channel", string(op.chs[it.ch]), "id", it.e.Pos.ID, "err", err)
			continue
		}
		out = append(out, liveNotice{ch: it.ch, m: m, payload: shape.Render(m)})
	}
	return out, nil
}
