package hub_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// fakeBus counts references; the hub's logic is pure, so an in-memory
// stand-in is enough here (the Redis broker has its own tests).
type fakeBus struct {
	mu   sync.Mutex
	refs map[wire.Channel]int
	fail wire.Channel
}

func newFakeBus() *fakeBus { return &fakeBus{refs: map[wire.Channel]int{}} }

func (b *fakeBus) Subscribe(_ context.Context, chs []wire.Channel) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chs {
		if ch == b.fail {
			return errors.New("broker down")
		}
	}
	for _, ch := range chs {
		b.refs[ch]++
	}
	return nil
}

func (b *fakeBus) Unsubscribe(chs []wire.Channel) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chs {
		if b.refs[ch]--; b.refs[ch] == 0 {
			delete(b.refs, ch)
		}
	}
}

func (b *fakeBus) total() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, v := range b.refs {
		n += v
	}
	return n
}

func channel(t testing.TB, user string) wire.Channel {
	ch, err := wire.PersonChannel("acme", user)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func payload(t testing.TB, text string) []byte {
	m, _ := wire.NewMessage(text, wire.ScopePerson, time.Now())
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sink records what a subscription is sent; past limit it refuses, as a
// connection over its queue bound does.
type sink struct {
	mu    sync.Mutex
	got   []string
	limit int
}

func newSink(limit int) *sink { return &sink{limit: limit} }

func (s *sink) Send(_ wire.Channel, _ *wire.Message, p []byte) hub.Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 && len(s.got) >= s.limit {
		return hub.Refused
	}
	s.got = append(s.got, string(p))
	return hub.Sent
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// shape renders "name:text" and counts its renders.
type shape struct {
	name    string
	renders atomic.Int64
}

func (s *shape) Render(m *wire.Message) []byte {
	s.renders.Add(1)
	return []byte(s.name + ":" + m.Text)
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func subscribe(t testing.TB, h *hub.Hub, sh hub.Shape, sk hub.Sink, chs ...wire.Channel) *hub.Subscription {
	t.Helper()
	s, err := h.Subscribe(context.Background(), chs, sh, sk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeliversOnceToEachSubscriptionOfTheChannel(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b})
	defer h.Close()
	bob := channel(t, "bob")
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	sh := &shape{name: "s"}
	tab1, tab2, alice := newSink(0), newSink(0), newSink(0)
	s1 := subscribe(t, h, sh, tab1, bob, company)
	s2 := subscribe(t, h, sh, tab2, bob)
	s3 := subscribe(t, h, sh, alice, channel(t, "alice"), company)

	h.Deliver(bob, payload(t, "for bob"))
	h.Deliver(company, payload(t, "for all"))
	for _, tc := range []struct {
		s    *sink
		want []string
	}{{tab1, []string{"s:for bob", "s:for all"}}, {tab2, []string{"s:for bob"}}, {alice, []string{"s:for all"}}} {
		if got := tc.s.take(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("got %q, want %q", got, tc.want)
		}
	}
	if st := h.Stats(); st.Delivered != 4 || st.Renders != 2 {
		t.Fatalf("stats %+v, want 4 delivered from 2 renders", st)
	}
	s1.Close()
	s1.Close() // idempotent
	s2.Close()
	s3.Close()
	h.Deliver(bob, payload(t, "after close"))
	if got := tab1.take(); len(got) != 0 {
		t.Fatalf("a closed subscription got %q", got)
	}
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left", n)
	}
}

// A notice is rendered once per shape present on its channel, and every
// subscription of a shape gets that shape's bytes.
func TestRendersOncePerShape(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	shapes := []*shape{{name: "a"}, {name: "b"}, {name: "c"}}
	sinks := make([]*sink, 1000)
	for i := range sinks {
		sinks[i] = newSink(0)
		subscribe(t, h, shapes[i%2], sinks[i], company, channel(t, fmt.Sprint("user-", i)))
	}
	h.Deliver(company, payload(t, "all hands"))
	for i, s := range sinks {
		want := shapes[i%2].name + ":all hands"
		if got := s.take(); len(got) != 1 || got[0] != want {
			t.Fatalf("subscriber %d got %q, want [%s]", i, got, want)
		}
	}
	for _, sh := range shapes {
		want := int64(1)
		if sh.name == "c" {
			want = 0 // no subscription of this shape on the channel
		}
		if got := sh.renders.Load(); got != want {
			t.Fatalf("shape %s rendered %d times, want %d", sh.name, got, want)
		}
	}
	if st := h.Stats(); st.Renders != 2 || st.Delivered != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

// A sink that refuses (its subscriber is over its bound) is counted; the
// others still get every notice.
func TestRefusalTouchesOnlyTheSlowSubscription(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	ch := channel(t, "bob")
	sh := &shape{name: "s"}
	slow, fast := newSink(4), newSink(0)
	subscribe(t, h, sh, slow, ch)
	subscribe(t, h, sh, fast, ch)
	for i := range 10 {
		h.Deliver(ch, payload(t, fmt.Sprint(i)))
		if got := fast.take(); len(got) != 1 {
			t.Fatalf("fast subscriber got %q for notice %d", got, i)
		}
	}
	if got := slow.take(); len(got) != 4 {
		t.Fatalf("slow subscriber kept %d notices, want its bound 4", len(got))
	}
	if st := h.Stats(); st.Refused != 6 || st.Delivered != 14 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMalformedMessagesAreCountedAndSkipped(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	ch := channel(t, "bob")
	s := newSink(0)
	subscribe(t, h, &shape{name: "s"}, s, ch)
	h.Deliver(ch, []byte("{nope"))
	h.Deliver(ch, payload(t, "ok"))
	if got := s.take(); len(got) != 1 || got[0] != "s:ok" {
		t.Fatalf("got %q", got)
	}
	if got := h.Stats().Malformed; got != 1 {
		t.Fatalf("Malformed = %d", got)
	}
}

func TestBrokerFailureReleasesWhatWasTaken(t *testing.T) {
	b := newFakeBus()
	b.fail = channel(t, "down")
	h := hub.New(hub.Config{Bus: b})
	defer h.Close()
	_, err := h.Subscribe(context.Background(), []wire.Channel{channel(t, "up"), b.fail}, &shape{}, newSink(0))
	if err == nil {
		t.Fatal("Subscribe succeeded with a failing broker")
	}
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left after a failed subscribe", n)
	}
	if st := h.Stats(); st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentSubscribeDeliverClose(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b})
	chs := []wire.Channel{channel(t, "a"), channel(t, "b"), channel(t, "c")}
	shapes := []*shape{{name: "x"}, {name: "y"}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := payload(t, "x")
		for {
			select {
			case <-stop:
				return
			default:
				for _, ch := range chs {
					h.Deliver(ch, p)
				}
			}
		}
	}()
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				s, err := h.Subscribe(context.Background(), []wire.Channel{chs[(i+j)%3], chs[(i+j+1)%3]}, shapes[j%2], newSink(8))
				if err != nil {
					t.Error(err)
					return
				}
				s.Close()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	h.Close()
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left", n)
	}
	if st := h.Stats(); st.Subscriptions != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseEndsEverySubscriptionAndRefusesNew(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b})
	ch := channel(t, "bob")
	s := newSink(0)
	subscribe(t, h, &shape{name: "s"}, s, ch)
	h.Close()
	h.Deliver(ch, payload(t, "after close"))
	if got := s.take(); len(got) != 0 {
		t.Fatalf("got %q after Close", got)
	}
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left", n)
	}
	if _, err := h.Subscribe(context.Background(), []wire.Channel{ch}, &shape{}, newSink(0)); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

// Dispatch returns at once and delivers on the lanes, every channel's
// notices in publish order.
func TestDispatchKeepsEachChannelsOrder(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus(), Lanes: 4})
	defer h.Close()
	sinks := make([]*sink, 8)
	chs := make([]wire.Channel, 8)
	for i := range sinks {
		sinks[i], chs[i] = newSink(0), channel(t, fmt.Sprint("user-", i))
		subscribe(t, h, &shape{name: "s"}, sinks[i], chs[i])
	}
	const n = 500
	for j := range n {
		for i := range chs {
			h.Dispatch(chs[i], payload(t, fmt.Sprint(j)))
		}
	}
	got := make([][]string, len(sinks))
	deadline := time.Now().Add(10 * time.Second)
	for i, s := range sinks {
		for len(got[i]) < n {
			got[i] = append(got[i], s.take()...)
			if time.Now().After(deadline) {
				t.Fatalf("sink %d got %d of %d notices", i, len(got[i]), n)
			}
			time.Sleep(time.Millisecond)
		}
		for j, text := range got[i] {
			if text != fmt.Sprint("s:", j) {
				t.Fatalf("sink %d: notice %d is %q: out of order", i, j, text)
			}
		}
	}
}

// order records which sink a fan-out reached, in the order it did.
type order struct {
	mu  sync.Mutex
	got []int
}

// orderSink is one subscription's sink writing into a shared order.
type orderSink struct {
	o *order
	n int
}

func (s orderSink) Send(wire.Channel, *wire.Message, []byte) hub.Verdict {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.o.got = append(s.o.got, s.n)
	return hub.Sent
}

// A fan-out goes through a channel's subscriptions in the order they
// came (the order their connections were allocated in, for the caches),
// however many of them left in between and however the list was
// compacted: after each round of subscribes and closes, one notice reaches
// exactly the subscriptions still open, oldest first.
func TestFanOutFollowsSubscriptionOrder(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	o := &order{}
	type open struct {
		n int
		s *hub.Subscription
	}
	var live []open // oldest first
	next := 0
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 60 {
		for range rnd.IntN(300) {
			// Some also read a personal channel, before or after the company's.
			chs := []wire.Channel{company}
			switch next % 3 {
			case 1:
				chs = append(chs, channel(t, fmt.Sprint("p", next)))
			case 2:
				chs = append([]wire.Channel{channel(t, fmt.Sprint("p", next))}, chs...)
			}
			live = append(live, open{next, subscribe(t, h, &shape{}, orderSink{o, next}, chs...)})
			next++
		}
		// Close a share of them (in some rounds nearly all), at random.
		share := rnd.Float64()
		if round%10 == 9 {
			share = 0.95
		}
		kept := live[:0]
		for _, x := range live {
			if rnd.Float64() < share {
				x.s.Close()
				continue
			}
			kept = append(kept, x)
		}
		live = kept
		o.got = nil
		h.Deliver(company, payload(t, fmt.Sprint(round)))
		want := make([]int, len(live))
		for i, x := range live {
			want[i] = x.n
		}
		if !slices.Equal(o.got, want) {
			t.Fatalf("round %d: the fan-out reached %v, want the open subscriptions in order %v", round, o.got, want)
		}
	}
}
