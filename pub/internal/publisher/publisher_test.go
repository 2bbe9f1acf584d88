package publisher_test

import (
	"context"
	"errors"
	"strings"
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

	n, msg, err := p.Publish(ctx, "acme", wire.ScopePerson, "bob", "hello")
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
	for _, tc := range []struct{ to, text, want string }{
		{"bob", "", "empty"},
		{"bob", "123456789", "limit is 8"},
		{"bob", "\xff", "UTF-8"},
		{"", "hi", "empty"},
		{strings.Repeat("b", 257), "hi", "limit is 256"},
	} {
		_, _, err := p.Publish(context.Background(), "acme", wire.ScopePerson, tc.to, tc.text)
		if !errors.Is(err, errkind.ErrBadInput) && !errors.Is(err, wire.ErrInvalidName) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Publish(%q, %q) = %v, want bad input mentioning %q", tc.to, tc.text, err, tc.want)
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
	_, _, err := p.Publish(context.Background(), "acme", wire.ScopePerson, "bob", "hi")
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
