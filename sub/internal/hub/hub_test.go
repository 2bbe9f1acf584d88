package hub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/sub/internal/hub"
	"github.com/oshirase/oshirase/wire"
)

// fakeBus counts references; the hub's logic is pure, so an in-memory
// stand-in is enough here (the Redis bus has its own tests).
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

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDeliversOnceToEachSubscriptionOfTheChannel(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b})
	defer h.Close()
	bob := channel(t, "bob")
	company, _ := wire.NewChannel("acme", wire.ScopeCompany, "")
	tab1, err := h.Subscribe(context.Background(), []wire.Channel{bob, company}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab2, _ := h.Subscribe(context.Background(), []wire.Channel{bob}, nil)
	alice, _ := h.Subscribe(context.Background(), []wire.Channel{channel(t, "alice"), company}, nil)

	h.Deliver(bob, payload(t, "for bob"))
	h.Deliver(company, payload(t, "for all"))
	for _, tc := range []struct {
		s    *hub.Subscription
		want []string
	}{{tab1, []string{"for bob", "for all"}}, {tab2, []string{"for bob"}}, {alice, []string{"for all"}}} {
		for _, want := range tc.want {
			select {
			case m := <-tc.s.C():
				if m.Text != want {
					t.Fatalf("got %q, want %q", m.Text, want)
				}
			default:
				t.Fatalf("missing %q", want)
			}
		}
		select {
		case m := <-tc.s.C():
			t.Fatalf("extra notice %q", m.Text)
		default:
		}
	}
	if got := h.Stats().Delivered; got != 4 {
		t.Fatalf("Delivered = %d, want 4", got)
	}
	tab1.Close()
	tab1.Close() // idempotent
	tab2.Close()
	alice.Close()
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left", n)
	}
}

// A dropped subscription's C ends only after onDrop has run: a transport
// closes the connection there, before the end of C could read as a normal
// end of the stream.
func TestDropTellsBeforeCEnds(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b, QueueSize: 1})
	defer h.Close()
	ch := channel(t, "bob")
	inDrop, release := make(chan struct{}), make(chan struct{})
	slow, _ := h.Subscribe(context.Background(), []wire.Channel{ch}, func(error) {
		close(inDrop)
		<-release
	})
	h.Deliver(ch, payload(t, "queued"))
	h.Deliver(ch, payload(t, "overflow"))
	select {
	case <-inDrop:
	case <-time.After(5 * time.Second):
		t.Fatal("not dropped")
	}
	<-slow.C() // the queued notice
	select {
	case _, open := <-slow.C():
		t.Fatalf("C ended (open %v) while onDrop was still running", open)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case _, open := <-slow.C():
		if open {
			t.Fatal("a notice after the drop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("C not closed after onDrop returned")
	}
}

func TestOverflowDropsOnlyTheSlowSubscription(t *testing.T) {
	b := newFakeBus()
	h := hub.New(hub.Config{Bus: b, QueueSize: 4})
	defer h.Close()
	ch := channel(t, "bob")
	dropped := make(chan error, 1)
	slow, _ := h.Subscribe(context.Background(), []wire.Channel{ch}, func(err error) { dropped <- err })
	fast, _ := h.Subscribe(context.Background(), []wire.Channel{ch}, nil)

	// Deliver must return at once even though slow's queue is full: run it
	// where a blocking enqueue shows up as this test's own failure, not as
	// a hang until the package timeout.
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for i := range 10 {
			h.Deliver(ch, payload(t, fmt.Sprint(i)))
			<-fast.C() // the fast one keeps up
		}
	}()
	select {
	case <-delivered:
	case <-time.After(5 * time.Second):
		// Unblock the stuck Deliver so that the deferred Close cannot hang,
		// then fail.
		go func() {
			for {
				select {
				case <-slow.C():
				case <-delivered:
					return
				}
			}
		}()
		select {
		case <-delivered:
		case <-time.After(5 * time.Second):
		}
		t.Fatal("Deliver blocked for 5s on a subscription whose queue was full; it must never block on a subscriber")
	}
	select {
	case err := <-dropped:
		if !errors.Is(err, hub.ErrSlowConsumer) {
			t.Fatalf("drop reason %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscription not dropped")
	}
	if !errors.Is(slow.Err(), hub.ErrSlowConsumer) {
		t.Fatalf("Err() = %v", slow.Err())
	}
	n := 0
	for range slow.C() { // queued notices drain, then C is closed
		n++
	}
	if n != 4 {
		t.Fatalf("slow subscription kept %d notices, want its queue size 4", n)
	}
	if st := h.Stats(); st.SlowDropped != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats %+v", st)
	}
	fast.Close()
	if got := b.total(); got != 0 {
		t.Fatalf("%d broker references left", got)
	}
}

func TestMalformedMessagesAreCountedAndSkipped(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	defer h.Close()
	ch := channel(t, "bob")
	s, _ := h.Subscribe(context.Background(), []wire.Channel{ch}, nil)
	h.Deliver(ch, []byte("{nope"))
	h.Deliver(ch, payload(t, "ok"))
	if m := <-s.C(); m.Text != "ok" {
		t.Fatalf("got %q", m.Text)
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
	_, err := h.Subscribe(context.Background(), []wire.Channel{channel(t, "up"), b.fail}, nil)
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
	h := hub.New(hub.Config{Bus: b, QueueSize: 8})
	chs := []wire.Channel{channel(t, "a"), channel(t, "b"), channel(t, "c")}
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
				s, err := h.Subscribe(context.Background(), []wire.Channel{chs[(i+j)%3], chs[(i+j+1)%3]}, nil)
				if errors.Is(err, hub.ErrSlowConsumer) {
					continue // flooded before it could read: a legitimate outcome
				}
				if err != nil {
					t.Error(err)
					return
				}
				if j%2 == 0 {
					for range len(s.C()) {
						<-s.C()
					}
				}
				s.Close()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver, Subscribe or Close still blocked 10s after the load stopped: a blocking send or a lock held across one")
	}
	h.Close()
	time.Sleep(50 * time.Millisecond) // drop callbacks run on their own goroutines
	if n := b.total(); n != 0 {
		t.Fatalf("%d broker references left", n)
	}
}

func TestCloseEndsEverySubscriptionAndRefusesNew(t *testing.T) {
	h := hub.New(hub.Config{Bus: newFakeBus()})
	s, _ := h.Subscribe(context.Background(), []wire.Channel{channel(t, "bob")}, nil)
	h.Close()
	if _, open := <-s.C(); open {
		t.Fatal("C still open after Close")
	}
	if _, err := h.Subscribe(context.Background(), []wire.Channel{channel(t, "bob")}, nil); !errors.Is(err, hub.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
