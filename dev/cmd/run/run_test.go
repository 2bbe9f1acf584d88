package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/oshirase/oshirase/dev/harness"
)

// bin holds run, pub and sub, built once for every test.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oshirase-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for name, src := range map[string]string{"run": ".", "pub": "../../../pub", "sub": "../../../sub"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), ".")
			cmd.Dir = src
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// orchestrator is one `make run`, with the embedded Redis, on free ports.
type orchestrator struct {
	t                *testing.T
	cmd              *exec.Cmd
	pubPort, subPort int
	up               chan struct{} // closed at the banner
	exited           chan struct{} // closed once cmd has exited
	exitErr          error

	mu   sync.Mutex
	log  bytes.Buffer
	pids map[string]int // child name → pid, from "started …" lines
}

var startedRE = regexp.MustCompile(`^\[run\] started (\w+) \(pid (\d+)\)$`)

func startOrchestrator(t *testing.T, env ...string) *orchestrator {
	t.Helper()
	o := &orchestrator{
		t: t, pubPort: freePort(t), subPort: freePort(t),
		up: make(chan struct{}), exited: make(chan struct{}), pids: map[string]int{},
	}
	o.cmd = exec.Command(filepath.Join(bin, "run"))
	o.cmd.Env = append(os.Environ(),
		"OSHIRASE_DEV_REDIS=embedded",
		"OSHIRASE_BIN="+bin,
		"PUB_PORT="+strconv.Itoa(o.pubPort),
		"SUB_PORT="+strconv.Itoa(o.subPort),
		"REDIS_PORT="+strconv.Itoa(freePort(t)),
		"REDIS_URL=",
	)
	o.cmd.Env = append(o.cmd.Env, env...)
	out, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o.cmd.Stderr = o.cmd.Stdout
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			o.mu.Lock()
			o.log.WriteString(line + "\n")
			if m := startedRE.FindStringSubmatch(line); m != nil {
				o.pids[m[1]], _ = strconv.Atoi(m[2])
			}
			o.mu.Unlock()
			if strings.HasPrefix(line, "oshirase is up") {
				close(o.up)
			}
		}
		o.exitErr = o.cmd.Wait()
		close(o.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-o.exited:
		default:
			_ = o.cmd.Process.Kill()
			<-o.exited
		}
		if t.Failed() {
			t.Logf("run's output:\n%s", o.output())
		}
	})
	select {
	case <-o.up:
	case <-o.exited:
		t.Fatalf("run exited before it was up: %v", o.exitErr)
	case <-time.After(60 * time.Second):
		t.Fatal("run not up after 60s")
	}
	return o
}

func (o *orchestrator) output() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.log.String()
}

func (o *orchestrator) children() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return map[string]int{"pub": o.pids["pub"], "sub": o.pids["sub"]}
}

// wait returns run's exit error once it has exited.
func (o *orchestrator) wait() error {
	o.t.Helper()
	select {
	case <-o.exited:
		return o.exitErr
	case <-time.After(30 * time.Second):
		o.t.Fatal("run still running 30s after being told to stop")
		return nil
	}
}

func (o *orchestrator) send(to, text string) (received int, id string) {
	o.t.Helper()
	q, _ := json.Marshal(map[string]any{
		"query":     `mutation($to: String!, $text: String!) { sendNotification(to: $to, text: $text) { receivedUsers id } }`,
		"variables": map[string]string{"to": to, "text": text},
	})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/query", o.pubPort), "application/json", bytes.NewReader(q))
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			SendNotification struct {
				ReceivedUsers int
				ID            string
			}
		}
		Errors []json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
		o.t.Fatalf("sendNotification: %v %s", err, r.Errors)
	}
	return r.Data.SendNotification.ReceivedUsers, r.Data.SendNotification.ID
}

// TestRunEmbedded is make run on a machine without redis-server: a notice
// goes from pub through the embedded Redis to a subscriber on sub, and
// Ctrl-C stops everything.
func TestRunEmbedded(t *testing.T) {
	o := startOrchestrator(t)
	if n, _ := o.send("alice", "nobody listens"); n != 0 {
		t.Fatalf("receivedUsers = %d with no subscriber, want 0", n)
	}

	ws := subscribe(t, o.subPort, "alice")
	var id string
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("receivedUsers still %d 10s after subscribing, want 1", n)
		}
		time.Sleep(50 * time.Millisecond)
		n, id = o.send("alice", "hello")
	}
	got := nextNotification(t, ws)
	if got.ID != id || got.Text != "hello" {
		t.Fatalf("subscriber got %+v, want id %s text hello", got, id)
	}
	// The embedded Redis keeps the history too (until run stops).
	if texts := o.recent("alice"); len(texts) == 0 || texts[0] != "hello" || texts[len(texts)-1] != "nobody listens" {
		t.Fatalf("recent notices %q, want hello first and the first notice last", texts)
	}

	kids := o.children()
	if err := o.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(); err != nil {
		t.Fatalf("run after SIGINT: %v, want exit 0", err)
	}
	assertGone(t, kids)
}

// TestRunRedisServerKeepsHistory is make run with redis-server: the
// notices' history is in an append-only file, and a second make run, on
// the same data directory, still lists them.
func TestRunRedisServerKeepsHistory(t *testing.T) {
	dir := t.TempDir()
	o := startOrchestrator(t, "OSHIRASE_DEV_REDIS=server", "OSHIRASE_DEV_REDIS_DIR="+dir)
	o.send("bob", "before the restart")
	if err := o.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(); err != nil {
		t.Fatalf("run after SIGINT: %v", err)
	}
	if aof, _ := filepath.Glob(filepath.Join(dir, "appendonlydir", "*")); len(aof) == 0 {
		t.Fatalf("no append-only file in %s", dir)
	}
	o = startOrchestrator(t, "OSHIRASE_DEV_REDIS=server", "OSHIRASE_DEV_REDIS_DIR="+dir)
	if texts := o.recent("bob"); len(texts) != 1 || texts[0] != "before the restart" {
		t.Fatalf("after the restart, bob's recent notices are %q", texts)
	}
	_ = o.cmd.Process.Signal(os.Interrupt)
	_ = o.wait()
}

// recent returns the texts of user's recent notices, newest first.
func (o *orchestrator) recent(user string) []string {
	o.t.Helper()
	q, _ := json.Marshal(map[string]any{
		"query":     `query($u: String!) { notifications(userName: $u) { edges { node { text } } } }`,
		"variables": map[string]string{"u": user},
	})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/graphql", o.subPort), "application/json", bytes.NewReader(q))
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Notifications struct {
				Edges []struct{ Node struct{ Text string } }
			}
		}
		Errors []json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 {
		o.t.Fatalf("notifications: %v %s", err, r.Errors)
	}
	var texts []string
	for _, e := range r.Data.Notifications.Edges {
		texts = append(texts, e.Node.Text)
	}
	return texts
}

// TestRunChildDies: when a service dies, run stops the other and fails.
func TestRunChildDies(t *testing.T) {
	o := startOrchestrator(t)
	kids := o.children()
	if err := syscall.Kill(kids["sub"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := o.wait(); !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("run after sub died: %v, want a non-zero exit", err)
	}
	if !strings.Contains(o.output(), "sub exited") {
		t.Error("run did not say that sub exited")
	}
	assertGone(t, kids)
}

func assertGone(t *testing.T, pids map[string]int) {
	t.Helper()
	for name, pid := range pids {
		if pid == 0 {
			t.Errorf("no pid logged for %s", name)
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still there after run exited: kill 0 = %v", name, pid, err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func freePort(t *testing.T) int { return harness.FreePort(t) }

type frame struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subscribe opens a graphql-transport-ws subscription and returns once the
// server has acknowledged the connection.
func subscribe(t *testing.T, port int, user string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/graphql", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.WriteJSON(frame{Type: "connection_init"}); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, c); f.Type != "connection_ack" {
		t.Fatalf("got %s, want connection_ack", f.Type)
	}
	q, _ := json.Marshal(map[string]any{
		"query":     `subscription($u: String!) { onNotificationReceived(userName: $u) { id text } }`,
		"variables": map[string]string{"u": user},
	})
	if err := c.WriteJSON(frame{ID: "1", Type: "subscribe", Payload: q}); err != nil {
		t.Fatal(err)
	}
	return c
}

type notification struct{ ID, Text string }

func nextNotification(t *testing.T, c *websocket.Conn) notification {
	t.Helper()
	f := readFrame(t, c)
	if f.Type != "next" {
		t.Fatalf("got %s %s, want next", f.Type, f.Payload)
	}
	var p struct {
		Data struct{ OnNotificationReceived notification }
	}
	if err := json.Unmarshal(f.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.Data.OnNotificationReceived
}

// readFrame reads the next frame that is not a keep-alive, answering pings.
func readFrame(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f frame
		if err := c.ReadJSON(&f); err != nil {
			t.Fatalf("reading from sub: %v", err)
		}
		switch f.Type {
		case "ping":
			_ = c.WriteJSON(frame{Type: "pong"})
		case "pong":
		default:
			return f
		}
	}
}
