package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// A graceful shutdown (SIGTERM, a deploy) without a drain (DRAIN_DELAY and
// DRAIN_WINDOW 0s, the harness's default) closes every WebSocket at once
// with 1001 "going away", on both subprotocols, and ends no subscription first: a
// `complete` tells a client its subscription is finished, so it would
// reconnect and not resubscribe — it would stay connected and receive
// nothing. Before the fix the hub ended the subscriptions while the close
// frames were still being sent, so most clients got `complete` first, and
// some sockets were cut without a close frame (1006).
func TestShutdownClosesEveryWebSocketWith1001(t *testing.T) {
	s := startStack(t)
	var clients []*gqlws.Client
	for i := range 6 {
		for _, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
			c := connect(t, s.sub, proto)
			subscribe(t, c, "1", "deploy")
			subscribe(t, c, "2", fmt.Sprint("deploy-", i))
			clients = append(clients, c)
		}
	}
	s.pub.WaitReceivers("deploy", len(clients))

	s.sub.Stop() // SIGTERM; waits for the process to exit
	for i, c := range clients {
		select {
		case <-c.Closed():
		case <-time.After(10 * time.Second):
			t.Fatalf("client %d (%s): still open after sub exited", i, c.Protocol)
		}
		// Msgs is closed once the connection has ended: everything the
		// server sent is in it.
		for m := range c.Msgs {
			if m.Type == "complete" || m.Type == "error" {
				t.Errorf("client %d (%s): got %s for subscription %q before the close; the client would not resubscribe",
					i, c.Protocol, m.Type, m.ID)
			}
		}
		if code, reason := c.CloseStatus(); code != 1001 {
			t.Errorf("client %d (%s): closed with %d %q, want 1001", i, c.Protocol, code, reason)
		}
	}
}

// SSE streams end at once on SIGTERM without a drain, and without "complete": graphql-sse then
// takes the end for a broken connection and retries (to another instance),
// where "complete" would end its subscription for good. Before the fix they
// stayed open until SHUTDOWN_TIMEOUT and were cut then.
func TestShutdownEndsSSEStreamsWithoutComplete(t *testing.T) {
	s := startStack(t, "SHUTDOWN_TIMEOUT=60s")
	var streams []*sseStream
	for range 3 {
		streams = append(streams, openSSE(t, s.sub, "deploy-sse"))
	}
	s.pub.WaitReceivers("deploy-sse", len(streams))

	stopped := make(chan struct{})
	go func() { defer close(stopped); s.sub.Stop() }()
	for i, st := range streams {
		timeout := time.After(10 * time.Second) // SHUTDOWN_TIMEOUT is 60s
		for ended := false; !ended; {
			select {
			case ev, ok := <-st.events:
				if !ok {
					ended = true
				} else if ev.Event == "complete" {
					t.Fatalf("stream %d: complete on shutdown; graphql-sse would not retry", i)
				}
			case <-timeout:
				t.Fatalf("stream %d: still open 10s after SIGTERM", i)
			}
		}
	}
	<-stopped
}

// The drain (issue 12): on SIGTERM /readyz answers 503 "draining" at once
// while every socket stays open and served for DRAIN_DELAY; then the
// WebSockets close with 1001 (no complete) and the SSE streams end (no
// complete), spread over DRAIN_WINDOW — never all in one instant — and
// sub exits 0 within SHUTDOWN_TIMEOUT.
func TestDrainSpreadsClosesOverTheWindow(t *testing.T) {
	const delay, window = 1500 * time.Millisecond, 3 * time.Second
	s := startStack(t, "DRAIN_DELAY=1500ms", "DRAIN_WINDOW=3s", "SHUTDOWN_TIMEOUT=10s")
	const ws = 10
	var clients []*gqlws.Client
	for i := range ws {
		proto := gqlws.TransportWS
		if i%2 == 1 {
			proto = gqlws.LegacyWS
		}
		c := connect(t, s.sub, proto)
		subscribe(t, c, "1", "drain")
		clients = append(clients, c)
	}
	var streams []*sseStream
	for range 2 {
		streams = append(streams, openSSE(t, s.sub, "drain"))
	}
	n := ws + len(streams)
	s.pub.WaitReceivers("drain", n)

	t0 := time.Now()
	var mu sync.Mutex
	var ends []time.Duration
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-c.Closed():
			case <-time.After(20 * time.Second):
				return
			}
			mu.Lock()
			ends = append(ends, time.Since(t0))
			mu.Unlock()
		}()
	}
	for i, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timeout := time.After(20 * time.Second)
			for {
				select {
				case ev, ok := <-st.events:
					if !ok {
						mu.Lock()
						ends = append(ends, time.Since(t0))
						mu.Unlock()
						return
					}
					if ev.Event == "complete" {
						t.Errorf("stream %d: complete on drain; graphql-sse would not retry", i)
					}
				case <-timeout:
					return
				}
			}
		}()
	}
	s.sub.Terminate()

	// Draining: not ready, but every socket still open and served.
	eventually(t, time.Second, "/readyz 503 draining", func() bool {
		code, body := get(t, s.sub.URL+"/readyz")
		return code == 503 && strings.Contains(body, "draining")
	})
	if d := time.Since(t0); d < delay/2 {
		if got := send(t, s.pub, "drain", "while draining"); got != n {
			t.Errorf("receivedUsers %d %s into DRAIN_DELAY, want all %d still served", got, d, n)
		}
		for i, c := range clients {
			if nt, _, err := c.NextNotification(5 * time.Second); err != nil || nt.Text != "while draining" {
				t.Errorf("client %d: %+v, %v; want the notice sent while draining", i, nt, err)
			}
		}
	}

	select {
	case <-s.sub.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("sub did not exit within 15s (SHUTDOWN_TIMEOUT 10s)")
	}
	exited := time.Since(t0)
	if code := s.sub.ExitCode(); code != 0 {
		t.Errorf("sub exited with %d, want 0", code)
	}
	wg.Wait()
	for i, c := range clients {
		for m := range c.Msgs {
			if m.Type == "complete" || m.Type == "error" {
				t.Errorf("client %d (%s): %s before the close", i, c.Protocol, m.Type)
			}
		}
		if code, reason := c.CloseStatus(); code != 1001 {
			t.Errorf("client %d (%s): closed with %d %q, want 1001", i, c.Protocol, code, reason)
		}
	}
	slices.Sort(ends)
	t.Logf("ends after SIGTERM: %v; exit after %s", ends, exited)
	if len(ends) != n {
		t.Fatalf("%d of %d connections ended within 20s", len(ends), n)
	}
	if ends[0] < delay*9/10 {
		t.Errorf("first close %s after SIGTERM, before DRAIN_DELAY %s", ends[0], delay)
	}
	if span := ends[n-1] - ends[0]; span < window/2 {
		t.Errorf("closes span %s, want them spread over DRAIN_WINDOW %s", span, window)
	}
	// No more than a third of them within any tenth of the window.
	for i := range ends {
		j := i
		for j < n && ends[j]-ends[i] <= window/10 {
			j++
		}
		if j-i > n/3 {
			t.Errorf("%d of %d closes within %s of %s: %v", j-i, n, window/10, ends[i], ends)
			break
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sub refuses to start when its drain cannot fit in SHUTDOWN_TIMEOUT,
// which bounds the whole shutdown: exit 2, naming the variables.
func TestDrainLongerThanShutdownTimeoutFailsAtStart(t *testing.T) {
	_, subBin := harness.Binaries(t)
	for _, env := range [][]string{
		{"SHUTDOWN_TIMEOUT=10s"}, // the default drain is 5s + 10s
		{"SHUTDOWN_TIMEOUT=3s", "DRAIN_DELAY=2s", "DRAIN_WINDOW=2s"},
		{"DRAIN_WINDOW=soon"},
	} {
		cmd := exec.Command(subBin)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("%v: exit %v, want 2\n%s", env, err, out)
		}
		if !strings.Contains(string(out), "DRAIN_WINDOW") {
			t.Errorf("%v: output does not name DRAIN_WINDOW:\n%s", env, out)
		}
	}
}

// pub finishes the mutations in flight when it gets SIGTERM: a publish
// held up by a frozen Redis when the signal comes still answers (with its
// receivedUsers) once Redis answers, pub accepts nothing new meanwhile,
// and then exits 0.
func TestPubFinishesInFlightMutationsOnSIGTERM(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "PUBLISH_TIMEOUT=20s", "SHUTDOWN_TIMEOUT=20s")
	sub := harness.StartSub(t, r)
	c := connect(t, sub, gqlws.TransportWS)
	subscribe(t, c, "1", "inflight")
	pub.WaitReceivers("inflight", 1)
	send(t, pub, "inflight", "live") // past its history read, which the freeze would hold up
	expectNotice(t, c, "live")

	r.Freeze()
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 3)
	for i := range 3 {
		go func() {
			n, err := pub.Send("inflight", fmt.Sprint("in flight ", i))
			done <- result{n, err}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the three are waiting on Redis
	pub.Terminate()
	eventually(t, 5*time.Second, "pub to stop accepting", func() bool {
		_, err := http.Get(pub.URL + "/healthz")
		return err != nil
	})
	select {
	case <-pub.Exited():
		t.Fatal("pub exited with mutations in flight")
	case res := <-done:
		t.Fatalf("a mutation answered while Redis was frozen: %+v", res)
	case <-time.After(time.Second):
	}
	r.Thaw()
	for range 3 {
		select {
		case res := <-done:
			if res.err != nil || res.n != 1 {
				t.Errorf("in-flight mutation: receivedUsers %d, %v; want 1", res.n, res.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("an in-flight mutation did not answer within 15s of Redis thawing")
		}
	}
	got := map[string]bool{}
	for range 3 {
		nt, _, err := c.NextNotification(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got[nt.Text] = true
	}
	if len(got) != 3 {
		t.Errorf("delivered %v, want the three in-flight notices", got)
	}
	select {
	case <-pub.Exited():
	case <-time.After(15 * time.Second):
		t.Fatal("pub did not exit after its mutations finished")
	}
	if code := pub.ExitCode(); code != 0 {
		t.Errorf("pub exited with %d, want 0", code)
	}
}
