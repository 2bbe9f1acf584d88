package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

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
	cmds, err := b.evalEach(ctx, sinceScript, len(chs), nil, func(i int) ([]string, []any) {
		return []string{chs[i].HistoryKey(), chs[i].MetaKey()}, []any{from[i].ID.String(), from[i].Epoch, b.cfg.HistorySize}
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
	cmds, err := b.evalEach(ctx, recentScript, len(chs), nil, func(i int) ([]string, []any) {
		bound := ""
		if !before[i].ID.IsZero() {
			bound = before[i].ID.String()
		}
		return []string{chs[i].HistoryKey(), chs[i].MetaKey()}, []any{newEpoch(), metaTTL, before[i].Epoch, bound, limit, b.cfg.HistorySize}
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

// Head implements History: one head.lua per channel, pipelined. Heads of
// one channel asked for by several callers whose reads go in one batch
// are read once for all of them (the company's and the public channel's
// heads are asked for by every fresh subscription of a burst): the read
// is sent after each of them asked, so it is as new as each needs.
func (b *Redis) Head(ctx context.Context, chs []wire.Channel) ([]Position, error) {
	out := make([]Position, len(chs))
	if b.cfg.HistorySize == 0 {
		return out, nil
	}
	metaTTL := ms(MetaTTL(b.cfg.HistoryTTL))
	names := make([]string, len(chs))
	for i, ch := range chs {
		names[i] = ch.MetaKey()
	}
	cmds, err := b.evalEach(ctx, headScript, len(chs), names, func(i int) ([]string, []any) {
		return []string{names[i]}, []any{newEpoch(), metaTTL}
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

// evalEach runs script n times, with the keys and arguments args gives for
// each, and answers the n commands. A script that answered EXPIRED makes
// the call fail with ErrCursorExpired; other failures with ErrUnavailable.
// names, when not nil, names each of the n runs: runs of script with the
// same name in one batch are sent once (and counted once against the
// batch's bound), and their callers share the answer, which none of them
// may modify.
//
// Reads take turns on one connection (a burst of subscribers, each reading
// its channels' heads or replaying after its cursor, must not open a
// connection each: go-redis grows its pool past PoolSize when every
// connection is busy). Whoever has the turn sends every read queued
// meanwhile with its own, in one pipeline of up to maxBatchedCommands
// commands: a reconnect storm of 10,000 subscriptions costs dozens of
// round trips, not 10,000 one after the other.
func (b *Redis) evalEach(ctx context.Context, script *redis.Script, n int, names []string, args func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	r := &historyRead{script: script, n: n, names: names, args: args, done: make(chan struct{})}
	if d, ok := ctx.Deadline(); ok {
		r.deadline = d
	}
	b.hist.mu.Lock()
	b.hist.queue = append(b.hist.queue, r)
	b.hist.mu.Unlock()
	for {
		select {
		case <-r.done:
			return r.cmds, r.err
		case b.reads <- struct{}{}:
			b.runQueued()
			<-b.reads
		case <-ctx.Done():
			b.hist.mu.Lock()
			if i := slices.Index(b.hist.queue, r); i >= 0 {
				b.hist.queue = slices.Delete(b.hist.queue, i, i+1)
			}
			b.hist.mu.Unlock()
			select {
			case <-r.done: // answered meanwhile
				return r.cmds, r.err
			default: // not sent, or on the wire: whoever sent it ignores the answer
			}
			return nil, fmt.Errorf("%w: history: %w", ErrUnavailable, ctx.Err())
		}
	}
}

// historyReads is the queue of history reads waiting for their turn.
type historyReads struct {
	mu    sync.Mutex
	queue []*historyRead
}

// historyRead is one evalEach call: its commands and, once done is
// closed, their answers.
type historyRead struct {
	script   *redis.Script
	n        int
	names    []string // nil: nothing shared (evalEach)
	args     func(i int) ([]string, []any)
	deadline time.Time // zero: none

	cmds []*redis.Cmd
	err  error
	done chan struct{}
}

// sharedRun is a named run of a script in a batch of reads (evalEach).
type sharedRun struct {
	script *redis.Script
	name   string
}

// maxBatchedCommands bounds one pipeline of queued reads (a replay's
// answer may be a whole history: the pipeline's answer stays a few MB).
const maxBatchedCommands = 512

// defaultReadTimeout bounds a batch none of whose callers set a deadline.
const defaultReadTimeout = 5 * time.Second

// runQueued takes the reads queued now, in order, up to
// maxBatchedCommands commands (at least one read), sends them in one
// pipeline and answers each. The caller has the turn.
func (b *Redis) runQueued() {
	b.hist.mu.Lock()
	k, cmds := 0, 0
	taken := map[sharedRun]bool{}
	for k < len(b.hist.queue) {
		r := b.hist.queue[k]
		add := r.n
		if r.names != nil {
			add = 0
			for _, name := range r.names {
				if !taken[sharedRun{r.script, name}] {
					add++
				}
			}
		}
		if k > 0 && cmds+add > maxBatchedCommands {
			break
		}
		for _, name := range r.names {
			taken[sharedRun{r.script, name}] = true
		}
		cmds += add
		k++
	}
	batch := slices.Clone(b.hist.queue[:k])
	b.hist.queue = slices.Delete(b.hist.queue, 0, k)
	b.hist.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	// The batch runs until the last of its callers gives up, whoever of
	// them goes away meanwhile, and stops only when the bus closes.
	var deadline time.Time
	for _, r := range batch {
		d := r.deadline
		if d.IsZero() {
			d = time.Now().Add(defaultReadTimeout)
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(b.stopCtx, deadline)
	defer cancel()
	for loaded := false; ; loaded = true {
		pipe := b.cfg.Client.Pipeline()
		shared := map[sharedRun]*redis.Cmd{}
		for _, r := range batch {
			r.cmds = make([]*redis.Cmd, r.n)
			for i := range r.n {
				var k sharedRun
				if r.names != nil {
					k = sharedRun{r.script, r.names[i]}
					if cmd, ok := shared[k]; ok {
						r.cmds[i] = cmd
						continue
					}
				}
				keys, argv := r.args(i)
				r.cmds[i] = r.script.EvalSha(ctx, pipe, keys, argv...)
				if r.names != nil {
					shared[k] = r.cmds[i]
				}
			}
		}
		_, _ = pipe.Exec(ctx) // each command's own error is looked at below
		var missing []*redis.Script
		for _, r := range batch {
			r.err = nil
			for _, cmd := range r.cmds {
				// An if chain, not a tagless switch: gremlins v0.6.0 cannot
				// see a switch's case conditions as covered (#298).
				err := cmd.Err()
				if err == nil {
					continue
				}
				if redis.HasErrorPrefix(err, "EXPIRED") {
					r.err = cmp.Or(r.err, fmt.Errorf("%w: %w", ErrCursorExpired, err))
				} else if redis.HasErrorPrefix(err, "NOSCRIPT") && !loaded {
					if !slices.Contains(missing, r.script) {
						missing = append(missing, r.script)
					}
				} else {
					r.err = cmp.Or(r.err, fmt.Errorf("%w: history: %w", ErrUnavailable, err))
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		// A new or restarted Redis: load the scripts, send the batch again.
		var loadErr error
		for _, s := range missing {
			if loadErr = s.Load(ctx, b.cfg.Client).Err(); loadErr != nil {
				break
			}
		}
		if loadErr != nil {
			for _, r := range batch {
				r.err = fmt.Errorf("%w: load history script: %w", ErrUnavailable, loadErr)
			}
			break
		}
	}
	for _, r := range batch {
		if r.err != nil {
			r.cmds = nil
		}
		close(r.done)
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
