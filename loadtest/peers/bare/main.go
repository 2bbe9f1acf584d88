// Command bare is the physical-limit peer: a minimal Go WebSocket server
// doing sub's job and nothing else. It speaks graphql-transport-ws with
// hand-built frames (no GraphQL execution), holds one Redis Pub/Sub
// connection, reads oshirase's own channels and messages (package wire),
// and fans each message out straight from the Redis reader. It is a
// yardstick for the benchmark, not a product: no auth, no origin checks.
//
//	PORT (default 8091), REDIS_URL (default localhost:6379), TENANT (default "default")
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("bare", "err", err)
		os.Exit(1)
	}
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
	addr := env("REDIS_URL", "localhost:6379")
	opt, err := redis.ParseURL(addr)
	if err != nil {
		opt = &redis.Options{Addr: addr}
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	h := &hub{ps: rdb.Subscribe(ctx), subs: map[string][]*sub{}, tenant: env("TENANT", "default"), log: log}
	defer h.ps.Close()
	go h.readRedis(ctx)

	up := &websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
		Subprotocols:    []string{"graphql-transport-ws"},
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		// Park the connection on a fresh goroutine: net/http's own stack
		// has grown while handling the upgrade and dies with this return.
		go h.serve(ws)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: ":" + env("PORT", "8091"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("bare listening", "addr", srv.Addr, "redis", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// conn is one WebSocket; mu serialises writes from the fan-out.
type conn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *conn) write(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

type sub struct {
	c      *conn
	prefix []byte // `{"id":"<id>","type":"next","payload":`
}

type hub struct {
	ps     *redis.PubSub
	tenant string
	log    *slog.Logger
	mu     sync.Mutex
	subs   map[string][]*sub // channel -> subscribers
}

func (h *hub) add(ch string, s *sub) {
	h.mu.Lock()
	first := len(h.subs[ch]) == 0
	h.subs[ch] = append(h.subs[ch], s)
	h.mu.Unlock()
	if first {
		_ = h.ps.Subscribe(context.Background(), ch)
	}
}

func (h *hub) remove(ch string, s *sub) {
	h.mu.Lock()
	list := h.subs[ch]
	for i, x := range list {
		if x == s {
			list[i] = list[len(list)-1]
			list = list[:len(list)-1]
			break
		}
	}
	last := len(list) == 0
	if last {
		delete(h.subs, ch)
	} else {
		h.subs[ch] = list
	}
	h.mu.Unlock()
	if last {
		_ = h.ps.Unsubscribe(context.Background(), ch)
	}
}

type inFrame struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Payload struct {
		Variables map[string]any `json:"variables"`
	} `json:"payload"`
}

// serve is the one goroutine a connection keeps: it parks in ReadMessage.
func (h *hub) serve(ws *websocket.Conn) {
	c := &conn{ws: ws}
	mine := owned{}
	defer func() {
		for _, m := range mine {
			h.remove(m.ch, m.s)
		}
		ws.Close()
	}()
	ws.SetReadLimit(64 << 10)
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		// Handle the message on a short-lived goroutine so that the parked
		// reader's stack never grows (JSON decoding, Redis SUBSCRIBE).
		ok := make(chan bool)
		go func() { ok <- h.handle(c, msg, mine) }()
		if !<-ok {
			return
		}
	}
}

type owned = map[string]struct {
	ch string
	s  *sub
}

// handle acts on one client message; false closes the connection.
func (h *hub) handle(c *conn, msg []byte, mine owned) bool {
	var f inFrame
	if json.Unmarshal(msg, &f) != nil {
		return false
	}
	switch f.Type {
	case "connection_init":
		_ = c.write([]byte(`{"type":"connection_ack"}`))
	case "ping":
		_ = c.write([]byte(`{"type":"pong"}`))
	case "subscribe":
		user := ""
		for _, v := range f.Payload.Variables {
			if s, ok := v.(string); ok {
				user = s
			}
		}
		wch, err := wire.PersonChannel(h.tenant, user)
		if err != nil {
			_ = c.write([]byte(`{"id":` + strconv.Quote(f.ID) + `,"type":"error","payload":[{"message":"bad user"}]}`))
			return true
		}
		s := &sub{c: c, prefix: []byte(`{"id":` + strconv.Quote(f.ID) + `,"type":"next","payload":`)}
		mine[f.ID] = struct {
			ch string
			s  *sub
		}{string(wch), s}
		h.add(string(wch), s)
	case "complete":
		if m, ok := mine[f.ID]; ok {
			h.remove(m.ch, m.s)
			delete(mine, f.ID)
		}
	}
	return true
}

// readRedis is the single Pub/Sub reader; it encodes each notice once and
// writes it to every local subscriber, spreading big fan-outs over all
// cores.
func (h *hub) readRedis(ctx context.Context) {
	workers := runtime.GOMAXPROCS(0)
	for {
		m, err := h.ps.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.log.Warn("redis receive", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		msg, err := wire.Decode([]byte(m.Payload))
		if err != nil {
			continue
		}
		data, _ := json.Marshal(map[string]any{"data": map[string]any{"onNotificationReceived": map[string]any{
			"id": msg.ID, "text": msg.Text, "timestamp": msg.Timestamp()}}})
		payload := append(data, '}')
		h.mu.Lock()
		list := append([]*sub(nil), h.subs[m.Channel]...)
		h.mu.Unlock()
		send := func(part []*sub) {
			buf := make([]byte, 0, 64+len(payload))
			for _, s := range part {
				buf = append(append(buf[:0], s.prefix...), payload...)
				if s.c.write(buf) != nil {
					s.c.ws.Close() // slow or gone: cut it off, its reader cleans up
				}
			}
		}
		if len(list) < 256 {
			send(list)
			continue
		}
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			part := list[w*len(list)/workers : (w+1)*len(list)/workers]
			wg.Add(1)
			go func() { defer wg.Done(); send(part) }()
		}
		wg.Wait()
	}
}
