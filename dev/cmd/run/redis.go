package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// redisInstance is the Redis pub and sub talk to, and how to stop it.
type redisInstance struct {
	url  string // REDIS_URL for the services
	desc string // for the banner
	stop func(con *console)
}

// startRedis picks the Redis to use: REDIS_URL as given; else one already
// answering PING on REDIS_PORT; else a redis-server of our own when one is
// on PATH; else an embedded in-memory one. OSHIRASE_DEV_REDIS narrows the
// choice. A redis-server of ours is sent on exited if it dies.
func startRedis(cfg config, con *console, exited chan<- *child) (*redisInstance, error) {
	if cfg.redisURL != "" {
		return &redisInstance{url: cfg.redisURL, desc: cfg.redisURL + " (REDIS_URL)", stop: func(*console) {}}, nil
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.redisPort))
	if cfg.redisMode != "embedded" {
		switch err := ping(addr); {
		case err == nil:
			con.Printf("run", "a Redis already answers on %s: using it", addr)
			return &redisInstance{url: addr, desc: addr + " (already running; left running)", stop: func(*console) {}}, nil
		case errors.Is(err, errNoAuth):
			return nil, fmt.Errorf("the Redis on %s wants a password: set REDIS_URL=redis://:PASSWORD@%s", addr, addr)
		}
	}
	if err := portFree(addr); err != nil {
		return nil, fmt.Errorf("port %d is taken by something that is not Redis (%v): set REDIS_PORT", cfg.redisPort, err)
	}
	path, err := exec.LookPath("redis-server")
	switch {
	case cfg.redisMode == "embedded" || (cfg.redisMode == "auto" && err != nil):
		return startEmbedded(addr, con)
	case err != nil:
		return nil, fmt.Errorf("OSHIRASE_DEV_REDIS=server but no redis-server on PATH: %w", err)
	}
	return startServer(path, addr, cfg.redisPort, cfg.redisDir, con, exited)
}

func startServer(path, addr string, port int, dir string, con *console, exited chan<- *child) (*redisInstance, error) {
	// The notices' history lives in Redis: an append-only file in dir
	// keeps it across restarts of make run, as docker-compose.yml does.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis data directory (OSHIRASE_DEV_REDIS_DIR): %w", err)
	}
	c, err := startChild(con, "redis", path, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--loglevel", "warning",
	}, nil, exited)
	if err != nil {
		return nil, err
	}
	stop := func(con *console) {
		c.signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			c.signal(syscall.SIGKILL)
			<-c.done
		}
		if c.err != nil {
			con.Printf("run", "redis-server: %v", c.err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(addr)
		if err == nil {
			break
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("redis-server exited at start: %v (its log is above)", c.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop(con)
			return nil, fmt.Errorf("redis-server on %s did not answer PING: %w", addr, err)
		}
	}
	return &redisInstance{url: addr, desc: addr + " (redis-server " + path + "; history kept in " + dir + ")", stop: stop}, nil
}

func startEmbedded(addr string, con *console) (*redisInstance, error) {
	m := miniredis.NewMiniRedis()
	// Let key TTLs run on the wall clock, as in Redis: sub's count hashes
	// carry a PEXPIRE that must fire when an instance vanishes.
	m.ClockTTL(true)
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis on %s: %w", addr, err)
	}
	con.Printf("run", "no redis-server on PATH (or OSHIRASE_DEV_REDIS=embedded): embedded in-memory Redis on %s; the notices' history is lost when run stops", addr)
	return &redisInstance{url: addr, desc: addr + " (embedded in-memory, miniredis; history lost at exit)", stop: func(*console) { m.Close() }}, nil
}

var errNoAuth = errors.New("redis: NOAUTH")

// ping reports whether a Redis answers PING on addr.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	reply = strings.TrimSpace(reply)
	switch {
	case reply == "+PONG":
		return nil
	case strings.HasPrefix(reply, "-NOAUTH"):
		return errNoAuth
	}
	return fmt.Errorf("not redis: answered %q", reply)
}
