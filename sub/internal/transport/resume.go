package transport

import (
	"bytes"
	"context"
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
// cursor says, or, for a fresh subscription, where each history stood when
// the subscription went live; every notice sent moves its channel's
// position to the notice's own, and the cursor of a notice is the
// positions just after it, encoded (sub/internal/cursor, the same form as
// the list's edge cursors).
//
// Catching up: the subscription is live on the bus first, and the live
// notices that come meanwhile are buffered. Then the history is read (Since
// the after cursor, or the Head for a fresh subscription), what it holds is
// sent in cursor order, then the buffered notices the history did not
// already hold, then the live ones as they come: no gap, no duplicate.

// liveNotice is a live notice that came while the subscription caught up.
type liveNotice struct {
	ch      int
	m       *wire.Message
	payload []byte
}

// historyTimeout bounds a catch-up's history read.
const historyTimeout = 5 * time.Second

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
	return op.send(i, m, payload, false)
}

// send queues one notice of channel i with its cursor; op.rmu is held.
func (op *operation) send(i int, m *wire.Message, payload []byte, replay bool) hub.Verdict {
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
	return op.c.sendData(op, payload, holes, cur, replay)
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

// catchUp runs once the subscription is live on the bus: it reads the
// history (after the cursor, or its head), sends what the client missed,
// then what was buffered, and lets live notices through.
func (s *Server) catchUp(op *operation, after *cursor.Cursor) error {
	var vec []bus.Position
	var replay []liveNotice
	if s.cfg.History != nil {
		ctx, cancel := context.WithTimeout(op.ctx, historyTimeout)
		defer cancel()
		if after != nil {
			var err error
			if replay, err = s.replay(ctx, op, after); err != nil {
				return err
			}
			vec = slices.Clone(after.Pos)
		} else {
			heads, err := s.cfg.History.Head(ctx, op.chs)
			if err != nil {
				return err
			}
			vec = heads
		}
	}
	op.rmu.Lock()
	defer op.rmu.Unlock()
	op.vec = vec
	if after == nil && vec != nil {
		// A notice buffered before the head was read is at or before it:
		// the cursor starts just before the first such notice of each
		// channel, so that a cursor of a notice sent never claims one not
		// yet sent.
		first := make([]bool, len(vec))
		for _, n := range op.buffered {
			if n.ch >= 0 && !first[n.ch] && op.sent(n.ch, n.m) {
				first[n.ch] = true
				id, _ := bus.ParseStreamID(n.m.Pos)
				vec[n.ch].ID = id.Prev()
			}
		}
	}
	for _, n := range replay {
		if op.send(n.ch, n.m, n.payload, true) != hub.Sent {
			return nil // the connection is gone or closing
		}
	}
	for _, n := range op.buffered {
		if op.sent(n.ch, n.m) {
			continue // the history held it: sent already
		}
		if op.send(n.ch, n.m, n.payload, true) != hub.Sent {
			return nil
		}
	}
	op.buffered, op.live = nil, true
	return nil
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
