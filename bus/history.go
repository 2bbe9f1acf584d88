package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// Since implements History: one since.lua per channel, pipelined.
func (b *Redis) Since(ctx context.Context, chs []wire.Channel, from []Position) ([][]Entry, error) {
	if len(chs) != len(from) {
		return nil, errors.New("bus: Since: one position per channel")
	}
	if b.cfg.HistorySize == 0 {
		return nil, fmt.Errorf("%w: history is off", ErrCursorExpired)
	}
	cmds, err := b.evalEach(ctx, sinceScript, len(chs), func(i int) ([]string, []any) {
		return []string{chs[i].HistoryKey(), chs[i].MetaKey()}, []any{from[i].ID.String(), from[i].Epoch}
	})
	if err != nil {
		return nil, err
	}
	out := make([][]Entry, len(chs))
	for i, cmd := range cmds {
		page, err := readPage(cmd)
		if err != nil {
			return nil, fmt.Errorf("bus: since %s: %w", chs[i], err)
		}
		out[i] = page.Entries
	}
	return out, nil
}

// Recent implements History: one recent.lua per channel, pipelined.
func (b *Redis) Recent(ctx context.Context, chs []wire.Channel, before []Position, limit int) ([]Page, error) {
	if len(chs) != len(before) {
		return nil, errors.New("bus: Recent: one position per channel")
	}
	out := make([]Page, len(chs))
	if b.cfg.HistorySize == 0 || limit <= 0 {
		return out, nil
	}
	metaTTL := ms(MetaTTL(b.cfg.HistoryTTL))
	cmds, err := b.evalEach(ctx, recentScript, len(chs), func(i int) ([]string, []any) {
		bound := ""
		if !before[i].ID.IsZero() {
			bound = before[i].ID.String()
		}
		return []string{chs[i].HistoryKey(), chs[i].MetaKey()}, []any{newEpoch(), metaTTL, before[i].Epoch, bound, limit}
	})
	if err != nil {
		return nil, err
	}
	for i, cmd := range cmds {
		if out[i], err = readPage(cmd); err != nil {
			return nil, fmt.Errorf("bus: recent %s: %w", chs[i], err)
		}
	}
	return out, nil
}

// Head implements History: one head.lua per channel, pipelined.
func (b *Redis) Head(ctx context.Context, chs []wire.Channel) ([]Position, error) {
	out := make([]Position, len(chs))
	if b.cfg.HistorySize == 0 {
		return out, nil
	}
	metaTTL := ms(MetaTTL(b.cfg.HistoryTTL))
	cmds, err := b.evalEach(ctx, headScript, len(chs), func(i int) ([]string, []any) {
		return []string{chs[i].MetaKey()}, []any{newEpoch(), metaTTL}
	})
	if err != nil {
		return nil, err
	}
	for i, cmd := range cmds {
		res, err := cmd.StringSlice()
		if err == nil && len(res) != 2 {
			err = fmt.Errorf("head.lua answered %d values", len(res))
		}
		if err == nil {
			out[i].Epoch = res[0]
			out[i].ID, err = ParseStreamID(res[1])
		}
		if err != nil {
			return nil, fmt.Errorf("bus: head %s: %w", chs[i], err)
		}
	}
	return out, nil
}

// evalEach runs script n times in one pipeline, with the keys and
// arguments args gives for each, loading the script on the first NOSCRIPT
// (a new or restarted Redis). A script that answered EXPIRED makes the
// whole call fail with ErrCursorExpired; other failures with ErrUnavailable.
func (b *Redis) evalEach(ctx context.Context, script *redis.Script, n int, args func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	// A burst of subscribers each reads its channels' heads: they take
	// turns on a few connections rather than each opening one of its own
	// (go-redis grows its pool past PoolSize when every connection is busy).
	select {
	case b.reads <- struct{}{}:
		defer func() { <-b.reads }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: history: %w", ErrUnavailable, ctx.Err())
	}
	for loaded := false; ; loaded = true {
		pipe := b.cfg.Client.Pipeline()
		cmds := make([]*redis.Cmd, n)
		for i := range n {
			keys, argv := args(i)
			cmds[i] = script.EvalSha(ctx, pipe, keys, argv...)
		}
		_, _ = pipe.Exec(ctx) // each command's own error is looked at below
		noScript := false
		for _, cmd := range cmds {
			switch err := cmd.Err(); {
			case err == nil:
			case redis.HasErrorPrefix(err, "EXPIRED"):
				return nil, fmt.Errorf("%w: %w", ErrCursorExpired, err)
			case redis.HasErrorPrefix(err, "NOSCRIPT") && !loaded:
				noScript = true
			default:
				return nil, fmt.Errorf("%w: history: %w", ErrUnavailable, err)
			}
		}
		if !noScript {
			return cmds, nil
		}
		if err := script.Load(ctx, b.cfg.Client).Err(); err != nil {
			return nil, fmt.Errorf("%w: load history script: %w", ErrUnavailable, err)
		}
	}
}

// readPage reads {epoch, entry, entry, ...} as since.lua and recent.lua
// answer it; each entry is {id, {"m", message}}.
func readPage(cmd *redis.Cmd) (Page, error) {
	res, err := cmd.Slice()
	if err != nil {
		return Page{}, err
	}
	if len(res) == 0 {
		return Page{}, errors.New("empty answer")
	}
	var p Page
	p.Epoch, _ = res[0].(string)
	p.Entries = make([]Entry, 0, len(res)-1)
	for _, r := range res[1:] {
		e, ok := r.([]any)
		if !ok || len(e) != 2 {
			return Page{}, fmt.Errorf("bad entry %v", r)
		}
		id, _ := e[0].(string)
		fields, _ := e[1].([]any)
		sid, err := ParseStreamID(id)
		if err != nil {
			return Page{}, err
		}
		var msg string
		for j := 0; j+1 < len(fields); j += 2 {
			if f, _ := fields[j].(string); f == "m" {
				msg, _ = fields[j+1].(string)
			}
		}
		p.Entries = append(p.Entries, Entry{
			Pos:     Position{Epoch: p.Epoch, ID: sid},
			Payload: splice([]byte(msg), id, p.Epoch),
		})
	}
	return p, nil
}
