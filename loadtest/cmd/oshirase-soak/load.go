package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// load is the soak's clients: churning connections, a publisher, slow
// consumers.
type load struct {
	st *stack
	o  options

	connects, failures, published, publishFailures, slowCut, slowRead atomic.Int64
}

func newLoad(st *stack, o options) *load { return &load{st: st, o: o} }

// sources are the loopback addresses connections come from, so that
// TIME_WAIT sockets of thousands of short connections never use up the
// ephemeral ports of one address pair.
const sources = 32

func dialer(i int, readBuffer int) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}, Timeout: 10 * time.Second}
	if readBuffer > 0 {
		// Before connect, so that the window the peer sees is small too.
		nd.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuffer)
			})
		}
	}
	return &websocket.Dialer{
		Subprotocols:     []string{"graphql-transport-ws"},
		HandshakeTimeout: 10 * time.Second,
		NetDialContext:   nd.DialContext,
	}
}

// run starts every client and returns a channel closed once all stopped
// after ctx ends.
func (ld *load) run(ctx context.Context) <-chan struct{} {
	var wg sync.WaitGroup
	wsURL := strings.Replace(ld.st.subURL, "http://", "ws://", 1) + "/graphql"
	for i := range ld.o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.churn(ctx, i, wsURL)
		}()
	}
	for i := range ld.o.slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.slowConsumer(ctx, i, wsURL)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ld.publish(ctx)
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (ld *load) life() time.Duration {
	return ld.o.minLife + rand.N(ld.o.maxLife-ld.o.minLife+1)
}

// open dials, completes connection_init and subscribes to user's notices.
func open(ctx context.Context, d *websocket.Dialer, url, user string) (*websocket.Conn, error) {
	c, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"connection_init"}`)); err != nil {
		c.Close()
		return nil, err
	}
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.Contains(b, []byte(`"connection_ack"`)) {
			break
		}
	}
	sub := fmt.Sprintf(`{"id":"1","type":"subscribe","payload":{"query":"subscription($u:String!){onNotificationReceived(userName:$u){id text timestamp}}","variables":{"u":%q}}}`, user)
	if err := c.WriteMessage(websocket.TextMessage, []byte(sub)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// churn keeps one connection coming and going: open, subscribe, read for
// its life, close; again.
func (ld *load) churn(ctx context.Context, i int, url string) {
	d := dialer(i, 0)
	if !sleep(ctx, rand.N(ld.o.maxLife)) { // spread the first connects
		return
	}
	for ctx.Err() == nil {
		user := fmt.Sprint("soak-", rand.N(ld.o.users))
		c, err := open(ctx, d, url, user)
		if err != nil {
			if ctx.Err() == nil {
				ld.failures.Add(1)
				sleep(ctx, time.Second)
			}
			continue
		}
		ld.connects.Add(1)
		end := time.Now().Add(ld.life())
		_ = c.SetReadDeadline(end)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				break
			}
			if bytes.HasPrefix(b, []byte(`{"type":"ping"`)) {
				_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
			}
			if ctx.Err() != nil {
				break
			}
		}
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = c.Close()
	}
}

// slowLife is how long a slow consumer stays before it reconnects.
const slowLife = 30 * time.Second

// slowConsumer subscribes to a user of its own that is flooded, through a
// small receive buffer, reading one message a second: once the kernel's
// buffers are full (sub's send buffer grows to a few MB first, some 20 s
// at the default rates), sub cuts it off as a slow consumer (1013); it
// comes back after slowLife.
func (ld *load) slowConsumer(ctx context.Context, i int, url string) {
	d := dialer(i, 4096)
	user := fmt.Sprint("soak-slow-", i)
	for ctx.Err() == nil {
		c, err := open(ctx, d, url, user)
		if err != nil {
			if ctx.Err() == nil {
				ld.failures.Add(1)
				sleep(ctx, time.Second)
			}
			continue
		}
		ld.connects.Add(1)
		// A stalled tab is reloaded after a while: without that, a
		// consumer cut off would go on reading, a message a second, what
		// the kernel buffered before the close.
		end := time.Now().Add(slowLife)
		for ctx.Err() == nil && time.Now().Before(end) {
			_ = c.SetReadDeadline(end)
			_, b, err := c.ReadMessage()
			if err != nil {
				if time.Now().Before(end) {
					ld.slowCut.Add(1)
				}
				break
			}
			ld.slowRead.Add(int64(len(b)))
			if !sleep(ctx, time.Second) {
				break
			}
		}
		_ = c.Close()
		sleep(ctx, time.Second)
	}
}

// publish sends personal notices through pub: publish-rate a second to
// random users, and slow-rate a second of 4 KB notices to each slow
// consumer's user.
func (ld *load) publish(ctx context.Context) {
	var wg sync.WaitGroup
	pace := func(rate float64, next func() (string, string)) {
		defer wg.Done()
		if rate <= 0 {
			return
		}
		every := time.Duration(float64(time.Second) / rate)
		start := time.Now()
		for n := 0; ; n++ {
			if !sleep(ctx, time.Until(start.Add(time.Duration(n)*every))) {
				return
			}
			to, text := next()
			if ld.send(ctx, to, text) == nil {
				ld.published.Add(1)
			} else if ctx.Err() == nil {
				ld.publishFailures.Add(1)
			}
		}
	}
	big := strings.Repeat("x", 4000)
	wg.Add(1)
	go pace(ld.o.publishRate, func() (string, string) {
		return fmt.Sprint("soak-", rand.N(ld.o.users)), "soak notice"
	})
	for i := range ld.o.slow {
		wg.Add(1)
		go pace(ld.o.slowRate, func() (string, string) { return fmt.Sprint("soak-slow-", i), big })
	}
	wg.Wait()
}

var pubClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func (ld *load) send(ctx context.Context, to, text string) error {
	body, _ := json.Marshal(map[string]any{
		"query":     `mutation($to:String!,$text:String!){sendNotification(to:$to,text:$text){receivedUsers}}`,
		"variables": map[string]any{"to": to, "text": text},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ld.st.pubURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := pubClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct{ Errors []json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(r.Errors) > 0 {
		return fmt.Errorf("publish: %d", resp.StatusCode)
	}
	return nil
}

// seed publishes one notice to every user the load uses.
func (ld *load) seed(ctx context.Context) error {
	users := make(chan string)
	go func() {
		defer close(users)
		for i := range ld.o.users {
			users <- fmt.Sprint("soak-", i)
		}
		for i := range ld.o.slow {
			users <- fmt.Sprint("soak-slow-", i)
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range users {
				if ld.send(ctx, u, "seed") != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("seeding the histories: %d publishes failed", n)
	}
	return nil
}
