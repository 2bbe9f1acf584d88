// Package harness starts the real parts for end-to-end tests: a
// redis-server on a free port, and the pub and sub binaries built from this
// checkout. Everything it starts is stopped by t.Cleanup.
package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oshirase/oshirase/bus/redistest"
)

// FreePort returns a TCP port that is free now (see redistest.FreePort).
func FreePort(tb testing.TB) int { return redistest.FreePort(tb) }

// Root is the repository root.
func Root(tb testing.TB) string {
	tb.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var buildOnce sync.Once
var buildErr error

// Binaries builds bin/pub and bin/sub once per test process (with -race
// when the tests run with it) and returns their paths.
func Binaries(tb testing.TB) (pub, sub string) {
	tb.Helper()
	root := Root(tb)
	dir := filepath.Join(root, "bin", "test")
	buildOnce.Do(func() {
		for _, svc := range []string{"pub", "sub"} {
			args := []string{"build"}
			if raceEnabled {
				args = append(args, "-race")
			}
			args = append(args, "-o", filepath.Join(dir, svc), ".")
			cmd := exec.Command("go", args...)
			cmd.Dir = filepath.Join(root, svc)
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", svc, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return filepath.Join(dir, "pub"), filepath.Join(dir, "sub")
}

// Redis is a redis-server of the test's own.
type Redis = redistest.Server

// StartRedis starts redis-server on a free port, without persistence.
func StartRedis(tb testing.TB) *Redis { return redistest.Start(tb) }

// Service is a running pub or sub binary.
type Service struct {
	Name string
	Port int
	URL  string // http://127.0.0.1:port
	tb   testing.TB
	bin  string
	env  []string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  *bytes.Buffer
	done chan struct{}

	exitCode int
}

type syncBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// StartPub starts pub against r with extra environment KEY=VALUE pairs.
func StartPub(tb testing.TB, r *Redis, env ...string) *Service {
	tb.Helper()
	bin, _ := Binaries(tb)
	return start(tb, "pub", bin, r, env)
}

// SubCountTTL is the COUNT_TTL tests run sub with unless they set their
// own: its periodic count refresh (every COUNT_TTL/3, 200s) is far beyond
// any wait of a test, so a count a test waits for was written by the
// mechanism under test — a subscribe, an unsubscribe, the rewrite after a
// Redis restart — never by the refresh covering for it.
const SubCountTTL = 10 * time.Minute

// StartSub starts sub against r with extra environment KEY=VALUE pairs.
// Unless env says otherwise it runs without a drain (DRAIN_DELAY and
// DRAIN_WINDOW 0s): SIGTERM closes every connection at once, and a test's
// restart does not wait out a drain.
func StartSub(tb testing.TB, r *Redis, env ...string) *Service {
	tb.Helper()
	_, bin := Binaries(tb)
	return start(tb, "sub", bin, r, append([]string{fmt.Sprint("COUNT_TTL=", SubCountTTL), "DRAIN_DELAY=0s", "DRAIN_WINDOW=0s"}, env...))
}

func start(tb testing.TB, name, bin string, r *Redis, env []string) *Service {
	tb.Helper()
	s := &Service{Name: name, tb: tb, bin: bin,
		env: append([]string{"PORT=0", "REDIS_URL=" + r.Addr, "LOG_LEVEL=debug"}, env...)}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start (re)starts the binary and waits for /readyz.
func (s *Service) Start() {
	s.tb.Helper()
	s.mu.Lock()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin)
	s.cmd.Env = append(os.Environ(), s.env...)
	out := syncBuffer{&s.mu, s.log}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	err := s.cmd.Start()
	s.done = make(chan struct{})
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if err != nil {
		s.tb.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		s.mu.Lock()
		s.exitCode = cmd.ProcessState.ExitCode()
		s.mu.Unlock()
		close(done)
	}()
	if s.Port == 0 {
		s.Port = s.awaitPort(15 * time.Second)
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
		// Restarts keep the port, as a restarted instance behind a proxy would.
		s.env = append(s.env, fmt.Sprintf("PORT=%d", s.Port))
	}
	s.WaitReady(15 * time.Second)
}

// listenRE finds the port in the "listening" log line, as text
// (`… listening" addr=[::]:8080`) or JSON (`… listening","addr":"[::]:8080"`).
var listenRE = regexp.MustCompile(`listening"(?: addr=|,"addr":")\S*?:(\d+)`)

// awaitPort reads the port the service chose from its "listening" log line.
func (s *Service) awaitPort(timeout time.Duration) int {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(s.Log()); m != nil {
			port, _ := strconv.Atoi(m[1])
			return port
		}
		select {
		case <-s.done:
			s.tb.Fatalf("%s exited during start:\n%s", s.Name, s.Log())
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.tb.Fatalf("%s did not log its port:\n%s", s.Name, s.Log())
	return 0
}

// WaitReady waits until /readyz answers 200.
func (s *Service) WaitReady(timeout time.Duration) {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.done:
			s.tb.Fatalf("%s exited during start:\n%s", s.Name, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s not ready after %s:\n%s", s.Name, timeout, s.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop stops the service gracefully (SIGTERM), killing it after 15s.
func (s *Service) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	if s.tb.Failed() {
		s.tb.Logf("%s log:\n%s", s.Name, s.Log())
	}
}

// Kill stops the service with SIGKILL, as a crash would: no drain, no
// close frames, its counts left to expire.
func (s *Service) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Terminate sends SIGTERM and returns at once; Stop waits for the exit.
func (s *Service) Terminate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
}

// Exited is closed when the running binary has exited; ExitCode is its
// status then.
func (s *Service) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// ExitCode is the exit status of the binary that last exited (-1 if it was
// killed by a signal, or is still running).
func (s *Service) ExitCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
	default:
		return -1
	}
	return s.exitCode
}

// Pid is the process id of the running binary.
func (s *Service) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Log returns what the service printed so far.
func (s *Service) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// WSURL is the service's GraphQL WebSocket endpoint.
func (s *Service) WSURL() string {
	return strings.Replace(s.URL, "http://", "ws://", 1) + "/graphql"
}

// GraphQLResponse is a decoded GraphQL answer.
type GraphQLResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Status int `json:"-"`
}

// Post sends a GraphQL request to path on s.
func (s *Service) Post(path, query string, vars map[string]any, header ...string) (*GraphQLResponse, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out GraphQLResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	out.Status = resp.StatusCode
	return &out, nil
}

var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Send publishes a personal notice through pub's sendNotification and
// returns receivedUsers; header is name, value pairs (credentials).
func (s *Service) Send(to, text string, header ...string) (int, error) {
	r, err := s.Post("/query", `mutation($to:String!,$text:String!){sendNotification(to:$to,text:$text){receivedUsers}}`,
		map[string]any{"to": to, "text": text}, header...)
	if err != nil {
		return 0, err
	}
	if len(r.Errors) > 0 {
		return 0, fmt.Errorf("graphql error: %s (%v)", r.Errors[0].Message, r.Errors[0].Extensions)
	}
	var d struct {
		SendNotification struct{ ReceivedUsers int } `json:"sendNotification"`
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return 0, err
	}
	return d.SendNotification.ReceivedUsers, nil
}

// WaitReceivers sends probe notices ("probe:…") to user until n live
// subscriptions receive one, for up to 20s (far less than the count
// refresh of SubCountTTL). Clients under test ignore probe texts.
func (s *Service) WaitReceivers(user string, n int) {
	s.tb.Helper()
	s.WaitReceiversWithin(user, n, 20*time.Second)
}

// WaitReceiversWithin is WaitReceivers with its own timeout.
func (s *Service) WaitReceiversWithin(user string, n int, timeout time.Duration) {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for time.Now().Before(deadline) {
		got, err := s.Send(user, "probe:"+user)
		if err == nil && got == n {
			return
		}
		last = got
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatalf("receivedUsers for %q stayed %d for %s, want %d", user, last, timeout, n)
}
