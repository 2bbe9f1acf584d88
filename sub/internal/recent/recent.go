// Package recent lists a subscriber's recent notices — the bell icon after
// a page load — newest first, as a Relay connection: the histories of every
// channel the subscriber reads, merged in the order cursors use, each edge
// with its cursor.
package recent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/sub/graph/model"
	"github.com/oshirase/oshirase/sub/internal/cursor"
	"github.com/oshirase/oshirase/wire"
)

// Connection is one page of notices, newest first.
type Connection struct {
	Edges    []*Edge
	PageInfo *PageInfo
}

// Edge is one notice and its cursor.
type Edge struct {
	Cursor string
	Node   *model.Notice // its Cursor is the edge's
}

// PageInfo says whether older notices follow, and where the page ends.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool // always false: pages are only read forwards (older)
	StartCursor     *string
	EndCursor       *string
}

// Config configures a Lister.
type Config struct {
	// History reads the notices. Required.
	History bus.History
	// DefaultFirst is the page size when none is asked for. Default: 20.
	DefaultFirst int
	// MaxFirst is the largest page served; larger asks get this many.
	// Default: 100.
	MaxFirst int
	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Lister serves pages of recent notices.
type Lister struct {
	cfg Config
	log *slog.Logger
}

// New returns a Lister.
func New(cfg Config) *Lister {
	if cfg.DefaultFirst <= 0 {
		cfg.DefaultFirst = 20
	}
	if cfg.MaxFirst <= 0 {
		cfg.MaxFirst = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Lister{cfg: cfg, log: cfg.Logger.With("component", "recent")}
}

// item is one notice read from one channel.
type item struct {
	ch    int
	kind  int
	entry bus.Entry
}

// PageSize is how many notices a page asked for with first holds at most:
// DefaultFirst for nil, at most MaxFirst, none for a negative first (which
// List refuses). sub's complexity limit charges a page by it.
func (l *Lister) PageSize(first *int64) int {
	if first == nil {
		return l.cfg.DefaultFirst
	}
	return int(max(0, min(*first, int64(l.cfg.MaxFirst))))
}

// List returns up to first notices of chs (the channels one subscriber
// reads), newest first, older than the notice of the cursor after when
// given. first nil means DefaultFirst; above MaxFirst it is MaxFirst.
func (l *Lister) List(ctx context.Context, chs []wire.Channel, first *int, after *string) (*Connection, error) {
	n := l.cfg.DefaultFirst
	if first != nil {
		if *first < 0 {
			return nil, fmt.Errorf("recent: %w: first must not be negative", errkind.ErrBadInput)
		}
		n = min(*first, l.cfg.MaxFirst)
	}
	before := make([]bus.Position, len(chs))
	var heads []bus.Position
	if after != nil {
		c, err := cursor.Decode(*after, chs)
		if err != nil {
			return nil, err
		}
		before = c.Older()
	} else {
		// The first page is where a page load subscribes from: its newest
		// cursor must hold, per channel, exactly what this read saw.
		// Heads first: a notice published between the two reads is then
		// in the list, never behind the cursor unseen.
		var err error
		if heads, err = l.cfg.History.Head(ctx, chs); err != nil {
			return nil, fmt.Errorf("recent: %w", err)
		}
	}
	// One more than asked per channel: the merge then knows whether any
	// notice follows the page.
	pages, err := l.cfg.History.Recent(ctx, chs, before, n+1)
	if err != nil {
		return nil, fmt.Errorf("recent: %w", err)
	}
	var items []item
	epochs := make([]string, len(chs))
	for i, p := range pages {
		epochs[i] = p.Epoch
		for _, e := range p.Entries {
			items = append(items, item{ch: i, kind: cursor.Kind(chs[i]), entry: e})
		}
	}
	slices.SortFunc(items, func(a, b item) int { // newest first
		if cursor.Before(b.entry.Pos.ID, b.kind, a.entry.Pos.ID, a.kind) {
			return -1
		}
		return 1
	})
	conn := &Connection{Edges: make([]*Edge, 0, min(n, len(items))), PageInfo: &PageInfo{HasNextPage: len(items) > n}}
	seen := seenUpTo(heads, pages)
	for k, it := range items[:min(n, len(items))] {
		msg, err := wire.Decode(it.entry.Payload)
		if err != nil {
			// Not oshirase's (someone else wrote to the stream): skipped,
			// as the live path skips it.
			l.log.Warn("skipping a malformed notice in the history", "channel", chs[it.ch], "id", it.entry.Pos.ID, "err", err)
			continue
		}
		at := cursor.At(chs, epochs, it.ch, it.entry.Pos.ID)
		if k == 0 && seen != nil {
			// The newest notice of the first page: every channel's
			// position is what the read saw of it, not a bound from this
			// notice's id — a notice published on another channel in the
			// same millisecond (or, on a cluster, by a shard whose clock
			// is behind) can have an id at or before this one's.
			at = cursor.Cursor{Pos: seen, At: it.ch}
		}
		c := cursor.Encode(chs, at)
		conn.Edges = append(conn.Edges, &Edge{Cursor: c, Node: &model.Notice{Message: msg, Cursor: c}})
	}
	switch {
	case len(conn.Edges) > 0:
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[len(conn.Edges)-1].Cursor
	case seen != nil:
		// Nothing to list yet: startCursor still says where the read
		// stood, so that a subscription after it misses nothing
		// published since.
		c := cursor.Encode(chs, cursor.Cursor{Pos: seen, At: -1})
		conn.PageInfo.StartCursor = &c
	}
	return conn, nil
}

// seenUpTo is, per channel, the position up to which a first page's read
// saw its history: the newest notice the page read of it, or, where it
// read none, the head read just before. It is nil when there are no heads
// (a later page) or no histories (HISTORY_SIZE=0).
func seenUpTo(heads []bus.Position, pages []bus.Page) []bus.Position {
	if heads == nil {
		return nil
	}
	seen := make([]bus.Position, len(heads))
	for i, p := range pages {
		seen[i] = heads[i]
		if len(p.Entries) > 0 {
			seen[i] = bus.Position{Epoch: p.Epoch, ID: p.Entries[0].Pos.ID}
		}
		if seen[i].Epoch == "" {
			return nil
		}
	}
	return seen
}
