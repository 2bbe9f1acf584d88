package publisher_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus"
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/service/errkind"
	"github.com/oshirase/oshirase/wire"
)

func TestPublishEncodesTheContract(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	ch, _ := wire.PersonChannel("acme", "bob")
	ps := rdb.Subscribe(ctx, string(ch))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	p := publisher.New(publisher.Config{Bus: newBus(t, rdb), Now: func() time.Time { return now }})

	n, msg, err := p.Publish(ctx, "key", publisher.Notice{Tenant: "acme", Scope: wire.ScopePerson, To: "bob", Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("receivedUsers = %d with no sub instance counting", n)
	}
	got, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := wire.Decode([]byte(got.Payload))
	if err != nil {
		t.Fatal(err)
	}
	if *dec != *msg || dec.Text != "hello" || dec.Timestamp() != 1_800_000_000 || dec.V != wire.Version {
		t.Fatalf("published %+v, returned %+v", dec, msg)
	}
	if msg.Pos == "" || msg.Epoch == "" {
		t.Fatalf("returned %+v without its history position", msg)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	p := publisher.New(publisher.Config{Bus: nil, MaxTextBytes: 8})
	for _, tc := range []struct{ to, text, key, want string }{
		{"bob", "", "", "empty"},
		{"bob", "123456789", "", "limit is 8"},
		{"bob", "\xff", "", "UTF-8"},
		{"", "hi", "", "empty"},
		{strings.Repeat("b", 257), "hi", "", "limit is 256"},
		{"bob", "hi", strings.Repeat("k", 129), "limit is 128"},
		{"bob", "hi", "k\n1", "control character"},
		{"bob", "hi", "\xffk", "UTF-8"},
	} {
		_, _, err := p.Publish(context.Background(), "key", publisher.Notice{Tenant: "acme", Scope: wire.ScopePerson, To: tc.to, Text: tc.text, IdempotencyKey: tc.key})
		if !errors.Is(err, errkind.ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Publish(%q, %q, key %q) = %v, want bad input mentioning %q", tc.to, tc.text, tc.key, err, tc.want)
		}
	}
}

func TestPublishWithRedisDownFailsInTime(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	srv.Stop()
	p := publisher.New(publisher.Config{Bus: newBus(t, rdb), Timeout: 500 * time.Millisecond})
	start := time.Now()
	_, _, err := p.Publish(context.Background(), "key", publisher.Notice{Tenant: "acme", Scope: wire.ScopePerson, To: "bob", Text: "hi"})
	if !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
}

func newBus(t *testing.T, rdb *redis.Client) *bus.Redis {
	t.Helper()
	b, err := bus.NewRedis(bus.Config{Client: rdb, HistorySize: 10, HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// A retry with the same key answers the first publish; the same key with
// another text is bad input; another credential's key is its own; a
// batch answers per notice, bad ones failing alone; over MaxBatch the
// whole batch is refused.
func TestIdempotencyAndBatches(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	p := publisher.New(publisher.Config{Bus: newBus(t, rdb), MaxBatch: 4})
	n := publisher.Notice{Tenant: "acme", Scope: wire.ScopeStore, To: "s1", Text: "stock count", IdempotencyKey: "count-2026-12-01"}
	_, first, err := p.Publish(ctx, "key-a", n)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	_, again, err := p.Publish(ctx, "key-a", n)
	if err != nil || *again != *first {
		t.Fatalf("retry answered %+v, %v; want the first %+v", again, err, first)
	}
	other := n
	other.Text = "another text"
	if _, _, err := p.Publish(ctx, "key-a", other); !errors.Is(err, errkind.ErrBadInput) {
		t.Fatalf("same key, other text: %v, want bad input", err)
	}
	if _, m, err := p.Publish(ctx, "key-b", other); err != nil || m.ID == first.ID {
		t.Fatalf("another credential, same key: %+v, %v; want a publish of its own", m, err)
	}
	if got := p.Published.Load(); got != 2 || p.Repeats.Load() != 1 {
		t.Fatalf("published %d, repeats %d; want 2 and 1", got, p.Repeats.Load())
	}

	res, err := p.PublishBatch(ctx, "key-a", []publisher.Notice{
		{Tenant: "acme", Scope: wire.ScopePerson, To: "bob", Text: "one"},
		{Tenant: "acme", Scope: wire.ScopePerson, To: "", Text: "no one"},
		n,
		{Tenant: "acme", Scope: wire.ScopeCompany, Text: "all"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].Msg.Pos == "" || !errors.Is(res[1].Err, errkind.ErrBadInput) || res[1].Msg != nil ||
		res[2].Err != nil || *res[2].Msg != *first || res[3].Err != nil || res[3].Msg.Scope != wire.ScopeCompany {
		t.Fatalf("batch: %+v", res)
	}
	if _, err := p.PublishBatch(ctx, "key-a", make([]publisher.Notice, 5)); !errors.Is(err, errkind.ErrBadInput) || !strings.Contains(err.Error(), "MAX_BATCH") {
		t.Fatalf("a batch over MaxBatch: %v", err)
	}
}

// Concurrent single publishes, sent together, each get their own answer;
// after Close a publish fails as unavailable.
func TestConcurrentPublishesAndClose(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	p := publisher.New(publisher.Config{Bus: newBus(t, rdb)})
	const n = 200
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var msg *wire.Message
			_, msg, errs[i] = p.Publish(context.Background(), "key", publisher.Notice{Tenant: "acme", Scope: wire.ScopePerson, To: fmt.Sprint("u", i%7), Text: fmt.Sprint("n", i)})
			if msg != nil {
				ids[i] = msg.ID + "@" + msg.Pos
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || ids[i] == "" || seen[ids[i]] {
			t.Fatalf("publish %d: %q, %v", i, ids[i], errs[i])
		}
		seen[ids[i]] = true
	}
	if got := p.Published.Load(); got != n {
		t.Fatalf("published %d, want %d", got, n)
	}
	p.Close()
	if _, _, err := p.Publish(context.Background(), "key", publisher.Notice{Tenant: "acme", Scope: wire.ScopePerson, To: "u", Text: "late"}); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
}
