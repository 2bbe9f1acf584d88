package hub_test

// Tests aimed at mutants that survived `make mutation` (docs/mutation.md):
// the defaults of Config, a notice dispatched alone, what closing one of
// several subscriptions leaves, and a subscription closed while it waits
// for the bus.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// slowBus is fakeBus with a delay before Subscribe answers, or until the
// hub gives up (its context ends). entered is told of each Subscribe call.
type slowBus struct {
	*fakeBus
	delay   time.Duration
	entered chan struct{}
}

func (b *slowBus) Subscribe(ctx context.Context, chs []wire.Channel) error {
	if b.entered != nil {
		b.entered <- struct{}{}
	}
	select {
	case <-time.After(b.delay):
		return b.fakeBus.Subscribe(ctx, chs)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SubscribeTimeout bounds the wait for the bus; unset, it is long enough
// for a bus that answers within a moment (the default is 5s).
func TestSubscribeTimeout(t *testing.T) {
	ch := channel(t, "bob")

	// Unset: a bus answering after 300ms is waited for.
	b := &slowBus{fakeBus: newFakeBus(), delay: 300 * time.Millisecond}
	h := hub.New(hub.Config{Bus: b})
	s, err := h.Subscribe(context.Background(), []wire.Channel{ch}, &shape{name: "s"}, newSink(0))
	if err != nil {
		t.Fatalf("default SubscribeTimeout: a bus answering in 300ms: %v", err)
	}
	s.Close()
	h.Close()

	// Set: a bus that never answers is given up on after it.
	b = &slowBus{fakeBus: newFakeBus(), delay: time.Hour}
	h = hub.New(hub.Config{Bus: b, SubscribeTimeout: 100 * time.Millisecond})
	defer h.Close()
	start := time.Now()
	_, err = h.Subscribe(context.Background(), []wire.Channel{ch}, &shape{name: "s"}, newSink(0))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a bus that never answers: err = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("SubscribeTimeout 100ms: gave up after %v", took)
	}
	if st := h.Stats(); st.Subscriptions != 0 || b.total() != 0 {
		t.Fatalf("after a timed-out subscribe: %+v, %d bus references", st, b.total())
	}
}

// With Lanes unset there are lanes (GOMAXPROCS of them), and a notice
// dispatched on its own, to an idle lane, is delivered.
func TestDispatchAloneWithDefaultLanes(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	ch := channel(t, "bob")
	s := newSink(0)
	subscribe(t, h, &shape{name: "s"}, s, ch)
	for i, text := range []string{"one", "two", "three"} {
		h.Dispatch(ch, payload(t, text))
		deadline := time.Now().Add(5 * time.Second)
		var got []string
		for len(got) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("notice %d, dispatched alone, not delivered within 5s", i)
			}
			time.Sleep(time.Millisecond)
			got = s.take()
		}
		if len(got) != 1 || got[0] != "s:"+text {
			t.Fatalf("notice %d: got %q", i, got)
		}
	}
}

// Closing one subscription of a channel leaves the others on it.
func TestCloseLeavesTheChannelsOtherSubscriptions(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b})
	defer h.Close()
	ch := channel(t, "bob")
	sh := &shape{name: "s"}
	tab1, tab2, tab3 := newSink(0), newSink(0), newSink(0)
	s1 := subscribe(t, h, sh, tab1, ch)
	s2 := subscribe(t, h, sh, tab2, ch)
	subscribe(t, h, sh, tab3, ch)
	s1.Close()
	h.Deliver(ch, payload(t, "one"))
	s2.Close()
	h.Deliver(ch, payload(t, "two"))
	if got := tab1.take(); len(got) != 0 {
		t.Fatalf("closed tab got %q", got)
	}
	if got := tab2.take(); len(got) != 1 || got[0] != "s:one" {
		t.Fatalf("tab 2 got %q, want [s:one]", got)
	}
	if got := tab3.take(); len(got) != 2 {
		t.Fatalf("tab 3 got %q, want both notices", got)
	}
	if st := h.Stats(); st.Subscriptions != 1 || st.Delivered != 3 {
		t.Fatalf("stats %+v", st)
	}
	if n := b.total(); n != 1 {
		t.Fatalf("%d bus references, want 1", n)
	}
}

// A subscription closed while Subscribe waits for the bus ends with
// context.Canceled, and gives the bus its reference back.
func TestCloseWhileSubscribing(t *testing.T) {
	b := &slowBus{fakeBus: newFakeBus(), delay: 200 * time.Millisecond, entered: make(chan struct{}, 1)}
	h := hub.New(hub.Config{Bus: b})
	defer h.Close()
	ch := channel(t, "bob")
	sk := newSink(0)
	var (
		wg  sync.WaitGroup
		sub *hub.Subscription
		err error
	)
	wg.Go(func() { sub, err = h.Subscribe(context.Background(), []wire.Channel{ch}, &shape{name: "s"}, sk) })
	select {
	case <-b.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe never reached the bus")
	}
	h.Close() // closes every live subscription, this one included
	wg.Wait()
	if sub != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe closed meanwhile = %v, %v; want nil, context.Canceled", sub, err)
	}
	if n := b.total(); n != 0 {
		t.Fatalf("%d bus references left", n)
	}
	h.Deliver(ch, payload(t, "after"))
	if got := sk.take(); len(got) != 0 {
		t.Fatalf("a subscription closed while subscribing got %q", got)
	}
}
