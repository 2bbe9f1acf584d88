// Command run is `make run`: Redis, pub and sub on one machine with nothing
// but Go installed. It starts Redis (reuses one already answering on
// REDIS_PORT, else a real redis-server when one is on PATH, else an
// embedded in-memory Redis), then bin/pub and bin/sub, waits until both
// answer /readyz, prints where to point a browser, and forwards their logs
// prefixed with their names. Ctrl-C stops everything, services before
// Redis so that sub can remove its counts; if any child dies, the rest are
// stopped and run exits non-zero.
//
// Environment:
//
//	PUB_PORT            pub's port, default 8080
//	SUB_PORT            sub's port, default 8081
//	REDIS_PORT          Redis port on 127.0.0.1, default 6379
//	REDIS_URL           use this Redis as it is; start none
//	OSHIRASE_DEV_REDIS  auto (default), server (require redis-server) or
//	                    embedded (always the in-memory one)
//	OSHIRASE_DEV_REDIS_DIR  where a redis-server of ours keeps its
//	                    append-only file (the notices' history survives a
//	                    restart), default <repo>/.cache/redis
//	OSHIRASE_BIN        directory holding pub and sub, default <repo>/bin
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

const (
	readyTimeout = 30 * time.Second // sub reports ready after its first Redis round trip
	stopTimeout  = 15 * time.Second // services drain for SHUTDOWN_TIMEOUT (10s) by default
)

func main() {
	con := newConsole(os.Stdout)
	if err := run(con); err != nil {
		con.Printf("run", "%v", err)
		os.Exit(1)
	}
}

type config struct {
	pubPort, subPort, redisPort int
	redisURL                    string // set: use it, start no Redis
	redisMode                   string // auto, server, embedded
	redisDir                    string // a redis-server's data directory
	bin                         string
}

func loadConfig() (config, error) {
	var errs []error
	port := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("%s=%q: want a port number 1-65535", name, v))
		}
		return n
	}
	c := config{
		pubPort:   port("PUB_PORT", 8080),
		subPort:   port("SUB_PORT", 8081),
		redisPort: port("REDIS_PORT", 6379),
		redisURL:  os.Getenv("REDIS_URL"),
		redisMode: os.Getenv("OSHIRASE_DEV_REDIS"),
		redisDir:  os.Getenv("OSHIRASE_DEV_REDIS_DIR"),
		bin:       os.Getenv("OSHIRASE_BIN"),
	}
	switch c.redisMode {
	case "":
		c.redisMode = "auto"
	case "auto", "server", "embedded":
	default:
		errs = append(errs, fmt.Errorf("OSHIRASE_DEV_REDIS=%q: want auto, server or embedded", c.redisMode))
	}
	if c.pubPort == c.subPort {
		errs = append(errs, fmt.Errorf("PUB_PORT and SUB_PORT are both %d: choose two ports", c.pubPort))
	}
	root, rootErr := repoRoot()
	if c.bin == "" {
		if rootErr != nil {
			errs = append(errs, rootErr)
		}
		c.bin = filepath.Join(root, "bin")
	}
	if c.redisDir == "" {
		c.redisDir = filepath.Join(root, ".cache", "redis")
		if rootErr != nil {
			cache, err := os.UserCacheDir()
			if err != nil {
				cache = os.TempDir()
			}
			c.redisDir = filepath.Join(cache, "oshirase", "redis")
		}
	}
	for _, name := range []string{"pub", "sub"} {
		if _, err := os.Stat(filepath.Join(c.bin, name)); err != nil {
			errs = append(errs, fmt.Errorf("%s not found in %s: run `make build` (or `make run`) first", name, c.bin))
		}
	}
	return c, errors.Join(errs...)
}

// repoRoot is the nearest directory above the working directory holding
// go.work: make run starts us in dev/.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from the repository, or set OSHIRASE_BIN")
		}
		dir = parent
	}
}

func run(con *console) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	for _, p := range []struct {
		env  string
		port int
	}{{"PUB_PORT", cfg.pubPort}, {"SUB_PORT", cfg.subPort}} {
		if err := portFree(fmt.Sprintf(":%d", p.port)); err != nil {
			return fmt.Errorf("port %d is taken (%v): stop what holds it or set %s", p.port, err, p.env)
		}
	}

	// Signals first: a Ctrl-C during start-up still stops what has started.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	exited := make(chan *child, 3)
	rds, err := startRedis(cfg, con, exited)
	if err != nil {
		return err
	}
	defer rds.stop(con)

	env := []string{"REDIS_URL=" + rds.url}
	var kids []*child
	for _, s := range []struct {
		name string
		port int
	}{{"pub", cfg.pubPort}, {"sub", cfg.subPort}} {
		senv := append([]string{"PORT=" + strconv.Itoa(s.port)}, env...)
		if s.name == "sub" {
			// One instance and no load balancer: nothing to drain towards,
			// so Ctrl-C closes sub's connections at once unless asked.
			for _, v := range []string{"DRAIN_DELAY", "DRAIN_WINDOW"} {
				if os.Getenv(v) == "" {
					senv = append(senv, v+"=0s")
				}
			}
		}
		c, err := startChild(con, s.name, filepath.Join(cfg.bin, s.name), nil, senv, exited)
		if err != nil {
			stopChildren(con, kids, nil)
			return err
		}
		kids = append(kids, c)
	}

	ready := make(chan error, 1)
	go func() { ready <- waitReady(cfg.pubPort, cfg.subPort) }()
	for waiting := true; waiting; {
		select {
		case err := <-ready:
			if err != nil {
				stopChildren(con, kids, sigs)
				return err
			}
			banner(con, cfg, rds.desc)
			waiting = false
		case sig := <-sigs:
			con.Printf("run", "%v: stopping", sig)
			return stopChildren(con, kids, sigs)
		case c := <-exited:
			stopChildren(con, kids, sigs)
			return fmt.Errorf("%s exited before it was ready: %v (its log is above)", c.name, c.err)
		}
	}

	select {
	case sig := <-sigs:
		con.Printf("run", "%v: stopping", sig)
		return stopChildren(con, kids, sigs)
	case c := <-exited:
		con.Printf("run", "%s exited: %v; stopping the rest", c.name, c.err)
		_ = stopChildren(con, kids, sigs)
		return fmt.Errorf("%s exited unexpectedly", c.name)
	}
}

// stopChildren asks every child still running to stop, all at once, and
// waits; a second signal on sigs, or stopTimeout, kills them.
func stopChildren(con *console, kids []*child, sigs <-chan os.Signal) error {
	for _, c := range kids {
		c.signal(syscall.SIGTERM)
	}
	start := time.Now()
	deadline := time.NewTimer(stopTimeout)
	defer deadline.Stop()
	var errs []error
	for _, c := range kids {
		for running := true; running; {
			select {
			case <-c.done:
				running = false
			case <-deadline.C:
				con.Printf("run", "%s did not stop within %v: killing it", c.name, stopTimeout)
				killAll(kids)
			case sig := <-sigs:
				// One Ctrl-C can arrive twice (to us, and to our process
				// group from a wrapper such as timeout): only a later one
				// means "hurry".
				if time.Since(start) > time.Second {
					con.Printf("run", "%v again: killing everything", sig)
					killAll(kids)
				}
			}
		}
		switch {
		case c.err != nil && c.stopping():
			errs = append(errs, fmt.Errorf("%s did not stop cleanly: %w", c.name, c.err))
		case c.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", c.name, c.err))
		}
	}
	return errors.Join(errs...)
}

func killAll(kids []*child) {
	for _, c := range kids {
		c.signal(syscall.SIGKILL)
	}
}

func waitReady(ports ...int) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for _, port := range ports {
		url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = errors.New(resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %v: %v", url, readyTimeout, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func banner(con *console, cfg config, redis string) {
	con.Raw(fmt.Sprintf(`
oshirase is up — Ctrl-C stops everything

  pub   http://localhost:%[1]d/          GraphQL Playground (POST /query)
  sub   http://localhost:%[2]d/          GraphQL Playground (WebSocket /graphql)
  demo  http://localhost:%[2]d/demo      live notices in the browser, with a send form
  redis %[3]s

  1. In the sub Playground, subscribe:
       subscription { onNotificationReceived(userName: "alice") { id text timestamp scope } }
  2. In the pub Playground, send:
       mutation { sendNotification(to: "alice", text: "hello") { receivedUsers id timestamp } }
     or from a shell:
       curl -s localhost:%[1]d/query -H 'Content-Type: application/json' \
         -d '{"query":"mutation { sendNotification(to: \"alice\", text: \"hello\") { receivedUsers } }"}'

`, cfg.pubPort, cfg.subPort, redis))
}
