package transport

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/oshirase/oshirase/service/metrics"
	"github.com/oshirase/oshirase/wire"
)

// Frames queued while a flush is due go out together: one write for all
// of them, each frame the subscription's id spliced around the shared
// payload.
func TestFramesQueuedTogetherGoOutInOneWrite(t *testing.T) {
	server, client := tcpPair(t)
	var lag, queued observations
	s := &Server{
		cfg:        Config{WriteQueueBytes: 1 << 20, QueueSize: 1000, WriteTimeout: time.Second},
		log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		conns:      map[*conn]struct{}{},
		lag:        &lag,
		queueBytes: &queued,
	}
	c := s.newConn(server, protoTransportWS)
	defer c.closeSocket()
	ops := []*operation{{c: c, qid: []byte(`"a"`), live: true}, {c: c, qid: []byte(`"b\"c"`), live: true}}
	c.mu.Lock()
	c.flushing = true // a flush is due: what is queued meanwhile waits for it
	c.mu.Unlock()
	const n = 100
	published := time.Now().Add(-2 * time.Second).UnixMilli()
	for i := range n {
		if v := ops[i%2].Send("", &wire.Message{TS: published}, fmt.Appendf(nil, `{"data":%d}`, i)); v != 0 {
			t.Fatalf("Send %d: verdict %d", i, v)
		}
	}
	c.flush()
	if w, f := s.writes.Load(), s.frames.Load(); w != 1 || f != n {
		t.Fatalf("%d frames in %d writes, want %d in 1", f, w, n)
	}
	// One lag per notice written, from its publish time; the queue's bytes
	// once per write: all n frames were waiting.
	if len(lag) != n || lag[0] < 2 || lag[0] > 60 {
		t.Fatalf("lag observed %d times (first %v s), want %d, about 2 s", len(lag), lag, n)
	}
	if len(queued) != 1 || int(queued[0]) < n*len(`{"data":1}`) {
		t.Fatalf("queue bytes observed %v, want once, every frame's bytes", queued)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		var h [2]byte
		if _, err := io.ReadFull(client, h[:]); err != nil {
			t.Fatal(err)
		}
		size := int(h[1])
		if h[0] != 0x81 || size >= 126 {
			t.Fatalf("frame %d: header % x", i, h)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(client, b); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"id":%s,"type":"next","payload":{"data":%d}}`, ops[i%2].qid, i)
		if string(b) != want {
			t.Fatalf("frame %d: %s, want %s", i, b, want)
		}
	}
}

// Frame headers follow RFC 6455 at every length boundary.
func TestWSHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 0xffff, 0x10000} {
		h := appendWSHeader(nil, opText, n)
		if len(h) != wsHeaderLen(n) {
			t.Fatalf("%d: header %d bytes, wsHeaderLen %d", n, len(h), wsHeaderLen(n))
		}
		var got int
		switch h[1] {
		case 126:
			got = int(binary.BigEndian.Uint16(h[2:]))
		case 127:
			got = int(binary.BigEndian.Uint64(h[2:]))
		default:
			got = int(h[1])
		}
		if h[0] != 0x81 || got != n {
			t.Fatalf("%d: header % x", n, h)
		}
	}
	if got := len(closeFrame(1013, string(make([]byte, 300)))); got > 2+125 {
		t.Fatalf("close frame of %d bytes: over the control frame limit", got)
	}
}

// observations records what it observes (one flush at a time writes).
type observations []float64

func (o *observations) Observe(v float64) { *o = append(*o, v) }

// BenchmarkFlush: 100 notices queued on one connection and written in one
// flush, with the delivery lag and queue bytes observed in histograms (as
// sub does) and not: the difference is what the observes cost. Reported
// per notice.
func BenchmarkFlush(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run(fmt.Sprintf("histograms=%v", observed), func(b *testing.B) {
			server, client := tcpPair(b)
			go func() { _, _ = io.Copy(io.Discard, client) }()
			s := &Server{
				cfg:        Config{WriteQueueBytes: 1 << 20, QueueSize: 1000, WriteTimeout: 5 * time.Second},
				log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
				conns:      map[*conn]struct{}{},
				lag:        metrics.Discard,
				queueBytes: metrics.Discard,
			}
			if observed {
				reg := metrics.New()
				s.lag = reg.Histogram("lag_seconds", "", metrics.LatencyBuckets)
				s.queueBytes = reg.Histogram("queue_bytes", "", metrics.ByteBuckets)
			}
			c := s.newConn(server, protoTransportWS)
			defer c.closeSocket()
			op := &operation{c: c, qid: []byte(`"1"`), live: true}
			m := &wire.Message{TS: time.Now().UnixMilli()}
			p := []byte(`{"data":{"notification":{"text":"hello"}}}`)
			const n = 100
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.mu.Lock()
				c.flushing = true
				c.mu.Unlock()
				for range n {
					op.Send("", m, p)
				}
				c.flush()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/notice")
		})
	}
}
