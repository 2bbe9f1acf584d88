// Package redistest starts a real redis-server of a test's own, on a free
// port and without persistence, that the test can stop and start again.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of the test's own.
type Server struct {
	Port int
	Addr string
	tb   testing.TB
	dir  string // with an append-only file there (StartPersistent); "" keeps nothing
	// extra are more redis-server arguments (cluster and replica nodes);
	// conf, when set, is a config file written before every start (sentinels).
	extra []string
	conf  string
	// password, when set, is the server's requirepass (and masterauth):
	// Client authenticates with it.
	password string
	// scratch is the working directory of a server that keeps nothing: a
	// replica's full sync still writes an RDB file, which must not land in
	// the package under test.
	scratch string
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

// Start starts redis-server on a free port; t.Cleanup kills it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	r := &Server{Port: FreePort(tb), tb: tb}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// StartPersistent starts redis-server like Start, but with an append-only
// file fsynced on every write in a directory of the test's own: a Stop
// (SIGKILL) and Start bring back everything it had acknowledged, as a
// production Redis with AOF does.
func StartPersistent(tb testing.TB) *Server {
	tb.Helper()
	r := &Server{Port: FreePort(tb), tb: tb, dir: tb.TempDir()}
	r.Addr = fmt.Sprintf("127.0.0.1:%d", r.Port)
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// Start (re)starts the server on its port and waits until it answers.
func (r *Server) Start() {
	r.tb.Helper()
	r.log = &bytes.Buffer{}
	args := []string{"--port", fmt.Sprint(r.Port), "--bind", "127.0.0.1", "--save", "", "--maxclients", "20000"}
	if r.dir != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	} else {
		if r.scratch == "" {
			r.scratch = r.tb.TempDir()
		}
		args = append(args, "--appendonly", "no", "--dir", r.scratch)
	}
	args = append(args, r.extra...)
	if r.conf != "" {
		args = append([]string{r.conf}, args...)
	}
	r.cmd = exec.Command("redis-server", args...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server (is it installed? make test installs it): %v", err)
	}
	r.waitUp()
}

// waitUp waits until the server answers PING.
func (r *Server) waitUp() {
	r.tb.Helper()
	c := r.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			// Wait for the process (and its output) before reading the log.
			_ = r.cmd.Process.Kill()
			_ = r.cmd.Wait()
			r.cmd = nil
			r.tb.Fatalf("redis-server did not start:\n%s", r.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the server's process is running (it may be
// frozen).
func (r *Server) Running() bool { return r.cmd != nil }

// Stop kills the server (SIGKILL: no goodbye to its clients).
func (r *Server) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Freeze stops the server with SIGSTOP: it keeps accepting connections
// (the kernel completes the handshakes) but answers nothing, as a Redis
// stuck in a long command or a swapped-out host does. It is thawed again
// by Thaw or, at the latest, when the test ends.
func (r *Server) Freeze() {
	r.tb.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		r.tb.Fatal("redistest: Freeze: the server is not running")
	}
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.tb.Fatalf("redistest: SIGSTOP: %v", err)
	}
	// Registered after Start's cleanup, so it runs before it and before
	// the cleanups of anything started earlier that talks to Redis.
	r.tb.Cleanup(r.Thaw)
}

// Thaw resumes a frozen server (SIGCONT); it does nothing otherwise.
func (r *Server) Thaw() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Client returns a new client of this server that honours its callers'
// deadlines, as the services' clients do (envconf.RedisOptions).
func (r *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.password, MaxRetries: -1, ContextTimeoutEnabled: true})
}

// CPUSeconds is the CPU time, in seconds, the Redis server behind rdb has
// used (INFO cpu: user and system), for benchmarks that report Redis's
// cost per operation.
func CPUSeconds(tb testing.TB, rdb *redis.Client) float64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}
