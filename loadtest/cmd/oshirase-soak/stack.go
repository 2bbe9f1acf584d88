package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/loadtest/soak"
	"github.com/oshirase/oshirase/loadtest/sysinfo"
)

// stack is the redis-server, pub and sub the soak runs.
type stack struct {
	procs    []*exec.Cmd
	rdb      *redis.Client
	pubURL   string // http://127.0.0.1:port/query
	subURL   string // http://127.0.0.1:port
	subPid   int
	logsDir  string
	keepLogs bool // a failed start: the logs say why
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startStack starts redis-server, pub and sub on free ports and waits
// until each answers. Their output goes to files under a temporary
// directory (named in the log). The stack returned, even with an error,
// must be stopped.
func startStack(ctx context.Context, bin, redisServer string) (*stack, error) {
	dir, err := os.MkdirTemp("", "oshirase-soak-")
	if err != nil {
		return nil, err
	}
	st := &stack{logsDir: dir}
	port, err := freePort()
	if err != nil {
		return st, err
	}
	redisAddr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := st.spawn("redis", redisServer, nil, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir); err != nil {
		return st, err
	}
	st.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	if err := waitFor(ctx, 10*time.Second, func() bool { return st.rdb.Ping(ctx).Err() == nil }); err != nil {
		st.keepLogs = true
		return st, fmt.Errorf("redis-server did not answer (logs in %s): %w", dir, err)
	}
	// PORT=0: each picks a free port and logs it.
	common := []string{"REDIS_URL=" + redisAddr, "LOG_LEVEL=info", "PORT=0"}
	if err := st.spawn("pub", filepath.Join(bin, "pub"), common); err != nil {
		return st, err
	}
	// A small write queue, so that the slow consumers are cut off within
	// seconds and come back: the slow-consumer path is soaked too.
	if err := st.spawn("sub", filepath.Join(bin, "sub"), append(common, "WRITE_QUEUE_BYTES=64KiB")); err != nil {
		return st, err
	}
	st.subPid = st.procs[2].Process.Pid
	pubPort, err := st.port(ctx, "pub")
	if err != nil {
		return st, err
	}
	subPort, err := st.port(ctx, "sub")
	if err != nil {
		return st, err
	}
	st.pubURL = fmt.Sprintf("http://127.0.0.1:%d/query", pubPort)
	st.subURL = fmt.Sprintf("http://127.0.0.1:%d", subPort)
	for _, u := range []string{st.pubURL[:len(st.pubURL)-len("/query")], st.subURL} {
		if err := waitFor(ctx, 60*time.Second, func() bool { return get(u+"/readyz") == nil }); err != nil {
			st.keepLogs = true
			return st, fmt.Errorf("%s not ready (logs in %s): %w", u, dir, err)
		}
	}
	return st, nil
}

// listenRE finds the port in a service's "listening" log line.
var listenRE = regexp.MustCompile(`listening"(?: addr=|,"addr":")\S*?:(\d+)`)

// port waits for name's "listening" log line and returns its port.
func (st *stack) port(ctx context.Context, name string) (int, error) {
	var port int
	err := waitFor(ctx, 60*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(st.logsDir, name+".log"))
		if m := listenRE.FindSubmatch(b); m != nil {
			port, _ = strconv.Atoi(string(m[1]))
			return true
		}
		return false
	})
	if err != nil {
		st.keepLogs = true
		return 0, fmt.Errorf("%s logged no port (logs in %s): %w", name, st.logsDir, err)
	}
	return port, nil
}

func (st *stack) spawn(name, path string, env []string, args ...string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	f, err := os.Create(filepath.Join(st.logsDir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	st.procs = append(st.procs, cmd)
	return nil
}

// stop ends sub, pub and redis-server (SIGTERM, then SIGKILL after 10 s).
func (st *stack) stop() {
	if st.rdb != nil {
		_ = st.rdb.Close()
	}
	for i := len(st.procs) - 1; i >= 0; i-- {
		cmd := st.procs[i]
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	if st.keepLogs {
		fmt.Printf("logs of redis-server, pub and sub: %s\n", st.logsDir)
	} else {
		_ = os.RemoveAll(st.logsDir)
	}
}

func waitFor(ctx context.Context, timeout time.Duration, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

var httpc = &http.Client{Timeout: 10 * time.Second}

func get(url string) error {
	resp, err := httpc.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return nil
}

// metrics reads sub's /metrics: unlabelled values by name (a value may be
// written as a float, as client_golang does).
func (st *stack) metrics() map[string]int64 {
	out := map[string]int64{}
	resp, err := httpc.Get(st.subURL + "/metrics")
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "{") {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = int64(v)
		}
	}
	return out
}

// sample reads sub's RSS, its metrics and Redis's key count.
func (st *stack) sample(ctx context.Context, ld *load, at time.Duration) soak.Sample {
	s := soak.Sample{At: at, Connects: ld.connects.Load(), Failures: ld.failures.Load(), Published: ld.published.Load()}
	s.RSS, _ = sysinfo.RSS(st.subPid)
	m := st.metrics()
	s.Goroutines = m["go_goroutines"]
	s.Open = m["oshirase_sub_connections"]
	s.SlowClosed = m["oshirase_sub_slow_dropped_total"]
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s.RedisKeys, _ = st.rdb.DBSize(c).Result()
	return s
}

func cpus() int { return runtime.NumCPU() }
