package e2e_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// /metrics of the real binaries, read with the Prometheus text parser,
// counts what happened: one delivery lag per notice delivered, one fan-out
// per notice from Redis, one publish duration per publish, and every
// connection's end under its reason — and sub logs one line for each
// connection it dropped or refused.
func TestMetricsCountWhatHappened(t *testing.T) {
	s := startStack(t, "KEEPALIVE_INTERVAL=300ms", "INIT_TIMEOUT=500ms", "ALLOWED_ORIGINS=https://app.example")
	bob := connect(t, s.sub, gqlws.TransportWS)
	carol := connect(t, s.sub, gqlws.LegacyWS)
	subscribe(t, bob, "1", "bob")
	subscribe(t, carol, "1", "carol")
	s.pub.WaitReceivers("bob", 1)
	s.pub.WaitReceivers("carol", 1)
	const n = 5
	for i := range n {
		send(t, s.pub, "bob", fmt.Sprint("for bob ", i))
		send(t, s.pub, "carol", fmt.Sprint("for carol ", i))
	}
	for i := range n {
		expectNotice(t, bob, fmt.Sprint("for bob ", i))
		expectNotice(t, carol, fmt.Sprint("for carol ", i))
	}

	// Every notice delivered (the probes too) was written with its lag;
	// every notice from Redis was fanned out once.
	var lagCount uint64
	var lagSum float64
	// One scrape a look, not one per metric: the delivery probes go on
	// meanwhile, and one between two scrapes makes the counts disagree
	// (this check once timed out under make test's load after 10 s; the
	// failure now says which counts disagreed).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams := scrape(t, s.sub)
		lagCount, lagSum = histogramIn(t, fams, "oshirase_sub_delivery_lag_seconds")
		fanouts, _ := histogramIn(t, fams, "oshirase_sub_fanout_duration_seconds")
		deliveries := metricIn(t, fams, "oshirase_sub_deliveries_total", nil)
		received := metricIn(t, fams, "oshirase_sub_messages_received_total", nil) - metricIn(t, fams, "oshirase_sub_malformed_total", nil)
		if lagCount == uint64(deliveries) && fanouts == uint64(received) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d lags for %d deliveries, %d fan-outs for %d well-formed messages; want one lag a delivery and one fan-out a message", lagCount, deliveries, fanouts, received)
		}
	}
	if lagCount < 2*n || lagSum/float64(lagCount) > 5 {
		t.Fatalf("delivery lag: %d notices, mean %.3fs; want at least %d, each well under 5s", lagCount, lagSum/float64(lagCount), 2*n)
	}
	if writes, bytes := histogram(t, s.sub, "oshirase_sub_write_queue_bytes"); writes == 0 || bytes < float64(2*n*len("for bob 0")) {
		t.Fatalf("write queue bytes: %d writes, %v bytes", writes, bytes)
	}
	published, failed := metric(t, s.pub, "oshirase_pub_published_total"), metric(t, s.pub, "oshirase_pub_failed_total")
	if count, _ := histogram(t, s.pub, "oshirase_pub_publish_duration_seconds"); count != uint64(published+failed) || published < 2*n {
		t.Fatalf("publish durations: %d, want one per publish (%d published, %d failed)", count, published, failed)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if metric(t, s.sub, name) <= 0 || metric(t, s.pub, name) <= 0 {
			t.Fatalf("%s missing on pub or sub", name)
		}
	}

	// Connections ending, each for its reason.
	bob.Close()
	raw := func() *websocket.Conn {
		d := websocket.Dialer{Subprotocols: []string{gqlws.TransportWS}, HandshakeTimeout: 10 * time.Second}
		c, _, err := d.Dial(s.sub.WSURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() { // read (and never answer) until the server closes
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		return c
	}
	raw() // never sends connection_init
	silent := raw()
	if err := silent.WriteJSON(gqlws.Msg{Type: "connection_init"}); err != nil { // then answers no ping
		t.Fatal(err)
	}
	rude := connect(t, s.sub, gqlws.TransportWS)
	if err := rude.SendRaw(`{"type":"bogus"}`); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"client_closed": 1, "init_timeout": 1, "ping_timeout": 1, "protocol_error": 1}
	eventually(t, 15*time.Second, fmt.Sprintf("disconnects %v", want), func() bool {
		for reason, n := range want {
			if metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", reason) != n {
				return false
			}
		}
		return true
	})
	if got := metricLabeled(t, s.sub, "oshirase_sub_disconnects_total", "reason", "other"); got != 0 {
		t.Fatalf("%d disconnects without a known reason", got)
	}
	if code, _ := rude.CloseStatus(); code != 4400 {
		t.Fatalf("bogus message closed with %d, want 4400", code)
	}
	for _, reason := range []string{"init_timeout", "ping_timeout", "protocol_error"} {
		got := 0
		for _, line := range strings.Split(s.sub.Log(), "\n") {
			if strings.Contains(line, `msg="connection closed"`) && strings.Contains(line, " reason="+reason+" ") {
				got++
			}
		}
		if got != 1 {
			t.Errorf("%d log lines for the connection closed for %s, want 1", got, reason)
		}
	}
	// Refused before the upgrade: one line too.
	if _, resp, err := gqlws.Dial(s.sub.WSURL(), gqlws.TransportWS, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a WebSocket from another origin: %v, %v; want 403", resp, err)
	}
	eventually(t, 5*time.Second, "the refusal logged", func() bool {
		return strings.Contains(s.sub.Log(), `msg="connection refused" component=transport status=403 reason=Forbidden protocol=websocket origin=https://evil.example`)
	})

	// carol is still there, and notices still flow to her.
	send(t, s.pub, "carol", "still here")
	expectNotice(t, carol, "still here")
}

// The README's metrics table names every oshirase metric either service
// exposes.
func TestREADMENamesEveryMetric(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(harness.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t)
	for _, svc := range []*harness.Service{s.pub, s.sub} {
		n := 0
		for name := range scrape(t, svc) {
			if !strings.HasPrefix(name, "oshirase_") {
				continue
			}
			n++
			if !strings.Contains(string(readme), "`"+name+"`") && !strings.Contains(string(readme), "`"+name+"{") {
				t.Errorf("the README does not name %s's metric %s", svc.Name, name)
			}
		}
		if n < 5 {
			t.Fatalf("%s: %d oshirase metrics", svc.Name, n)
		}
	}
}
