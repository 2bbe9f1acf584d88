package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// pipelineSizes records how many commands each pipeline of history scripts
// a client sends holds.
type pipelineSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (*pipelineSizes) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*pipelineSizes) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (p *pipelineSizes) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "evalsha" {
			p.mu.Lock()
			p.sizes = append(p.sizes, len(cmds))
			p.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

func (p *pipelineSizes) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sizes = nil
}

func (p *pipelineSizes) list() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sizes)
}

// TestHistoryReadsQueuedMeanwhileGoInPipelinesOfAtMost512: reads queued
// while another has the turn go together in pipelines of up to 512
// commands, 512 included, whole reads only; a read whose caller gave up
// while queued is not sent (history.go runQueued's bound, evalEach's
// removal from the queue). On one server: the batching is the client's.
func TestHistoryReadsQueuedMeanwhileGoInPipelinesOfAtMost512(t *testing.T) {
	onlyOn(t, "single")
	d, b, sizes := historyBusCountingPipelines(t)
	channels := func(prefix string, n int) []wire.Channel {
		chs := make([]wire.Channel, n)
		for i := range n {
			chs[i], _ = wire.PersonChannel("acme", fmt.Sprint(prefix, i))
		}
		return chs
	}
	head := func(timeout time.Duration, chs []wire.Channel) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := b.Head(ctx, chs)
		return err
	}
	if err := head(5*time.Second, channels("warm-", 1)); err != nil { // loads head.lua
		t.Fatal(err)
	}
	sizes.reset()

	thaw := freezeUntilThawed(t, d)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Go(func() { errs <- head(20*time.Second, channels("first-", 1)) })
	waitFor(t, "the first read on the wire", func() bool { return len(sizes.list()) == 1 })

	// Queued behind the first, gives up before its turn.
	if err := head(300*time.Millisecond, channels("gave-up-", 100)); !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("a read that gave up while queued: %v, want ErrUnavailable", err)
	}
	for i := range 3 {
		wg.Go(func() { errs <- head(20*time.Second, channels(fmt.Sprint("queued-", i, "-"), 256)) })
	}
	time.Sleep(500 * time.Millisecond) // the three queue behind the first
	thaw()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := sizes.list(), []int{1, 512, 256}; !slices.Equal(got, want) {
		t.Fatalf("pipelines of %v commands, want %v (the first read; two queued reads of 256 together; the third)", got, want)
	}
}

// TestHeadsOfOneChannelReadOnceABatch: every fresh subscription of a
// burst asks for the head of its company's channel beside its own; in one
// batch each channel's head is read once, and counted once against the
// batch's bound of 512 (history.go runQueued's shared runs): 300 callers
// asking for 600 heads of 301 channels go in one pipeline of 301. Every
// caller gets the position it would have read alone.
func TestHeadsOfOneChannelReadOnceABatch(t *testing.T) {
	onlyOn(t, "single")
	d, b, sizes := historyBusCountingPipelines(t)
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	want := publishTexts(t, b, company, "before the burst")[0].Pos
	person := func(i int) wire.Channel {
		ch, _ := wire.PersonChannel("acme", fmt.Sprint("burst-", i))
		return ch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := b.Head(ctx, []wire.Channel{person(-1)}); err != nil { // loads head.lua
		t.Fatal(err)
	}
	sizes.reset()

	thaw := freezeUntilThawed(t, d)
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.Head(ctx, []wire.Channel{person(-2)}); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "the first read on the wire", func() bool { return len(sizes.list()) == 1 })
	const callers = 300
	got := make([][]bus.Position, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			if got[i], err = b.Head(ctx, []wire.Channel{person(i), company}); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // all queue behind the first
	thaw()
	wg.Wait()
	if got, want := sizes.list(), []int{1, callers + 1}; !slices.Equal(got, want) {
		t.Fatalf("pipelines of %v commands, want %v (the first read; one head per person channel and one for the company)", got, want)
	}
	for i, pos := range got {
		if pos == nil {
			continue // failed above
		}
		if pos[1] != want {
			t.Fatalf("caller %d read the company's head as %+v, want %+v", i, pos[1], want)
		}
		if pos[0].Epoch == "" || pos[0].Epoch == want.Epoch {
			t.Fatalf("caller %d read its own channel's head as %+v: not its own epoch", i, pos[0])
		}
	}
}

// TestHistoryScriptsLoadedTogetherAfterAFlush: a batch of queued reads of
// two scripts a restarted Redis no longer has loads both before it is sent
// again (history.go runQueued's loop over the missing scripts: it stops
// only at a failed load).
func TestHistoryScriptsLoadedTogetherAfterAFlush(t *testing.T) {
	onlyOn(t, "single")
	d, b, sizes := historyBusCountingPipelines(t)
	ch, _ := wire.PersonChannel("acme", "flushed")
	from := publishTexts(t, b, ch, "one")[0].Pos
	admin := d.client()
	defer admin.Close()
	if err := admin.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	sizes.reset()

	thaw := freezeUntilThawed(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { _, err := b.Head(ctx, []wire.Channel{ch}); errs <- err })
	waitFor(t, "the first read on the wire", func() bool { return len(sizes.list()) == 1 })
	wg.Go(func() { _, err := b.Since(ctx, []wire.Channel{ch}, []bus.Position{from}); errs <- err })
	wg.Go(func() { _, err := b.Recent(ctx, []wire.Channel{ch}, []bus.Position{{}}, 10); errs <- err })
	time.Sleep(500 * time.Millisecond) // both queue behind the first
	thaw()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := sizes.list(); len(got) != 4 || got[2] != 2 {
		t.Fatalf("pipelines of %v commands, want [1 1 2 2] (the first read, sent again; the two queued reads together, sent again)", got)
	}
}

// freezeUntilThawed freezes d's Redis until the thaw it returns runs, or
// the test ends.
func freezeUntilThawed(t *testing.T, d deployment) (thaw func()) {
	t.Helper()
	d.freeze()
	var once sync.Once
	thaw = func() { once.Do(d.thaw) }
	t.Cleanup(thaw)
	return thaw
}

// historyBusCountingPipelines starts one Redis and a publishing bus with a
// history, whose client records the size of every pipeline it sends.
func historyBusCountingPipelines(t *testing.T) (single, *bus.Redis, *pipelineSizes) {
	t.Helper()
	d := single{redistest.Start(t)}
	sizes := &pipelineSizes{}
	b := instanceWith(t, d, nil, func(c *bus.Config) {
		withHistory(100, time.Hour)(c)
		c.Client.AddHook(sizes)
	})
	return d, b, sizes
}
