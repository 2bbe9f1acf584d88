package publish_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/loadtest/publish"
	"github.com/oshirase/oshirase/loadtest/rate"
	"github.com/oshirase/oshirase/wire"
)

// fake records what it is asked to publish; every 10th notice fails.
type fake struct {
	mu    sync.Mutex
	got   []publish.Notice
	batch int
}

func (f *fake) MaxBatch() int { return f.batch }
func (f *fake) Close() error  { return nil }
func (f *fake) Publish(_ context.Context, ns []publish.Notice) (int64, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	failed := 0
	for _, n := range ns {
		f.got = append(f.got, n)
		if len(f.got)%10 == 0 {
			failed++
		}
	}
	if failed > 0 {
		return int64(len(ns) - failed), failed, errors.New("boom")
	}
	return int64(len(ns)), 0, nil
}

func TestDrive(t *testing.T) {
	f := &fake{batch: 7}
	st := publish.Drive(context.Background(), f, rate.New(time.Now(), 0, 100), 3,
		func(i int64) string { return "u" + string(rune('0'+i%5)) },
		func(i int64, now time.Time) string { return "lt:x" })
	if len(f.got) != 100 || st.Sent != 90 || st.Failed != 10 || st.Received != 90 {
		t.Fatalf("got %d sent %d failed %d received %d", len(f.got), st.Sent, st.Failed, st.Received)
	}
	if st.FirstErr != "boom" || st.Rate() <= 0 || st.CallLat.Count() == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWireCodecMatchesWire(t *testing.T) {
	c := publish.WireCodec{Tenant: "default"}
	ch, err := c.Channel("bob")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := wire.PersonChannel("default", "bob")
	if ch != string(want) {
		t.Fatalf("channel %q, wire says %q", ch, want)
	}
	b, err := c.Encode("lt:1:2", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(b)
	if err != nil || m.Text != "lt:1:2" || m.Timestamp() != 100 {
		t.Fatalf("decoded %+v, %v", m, err)
	}
	nb, _ := publish.NodeCodec{}.Encode("hi", time.Unix(5, 0))
	if !strings.Contains(string(nb), `"text":"hi"`) {
		t.Fatalf("node message %s", nb)
	}
}
