package transport

import (
	"bufio"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// kaServer is a Server with one write worker and the given keep-alive
// interval, without a schema (nothing here subscribes).
func kaServer(t *testing.T, interval time.Duration) *Server {
	t.Helper()
	s := &Server{
		cfg:   Config{KeepAlive: interval, WriteQueueBytes: 1 << 20, QueueSize: 100, WriteTimeout: time.Second, Workers: 1},
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		conns: map[*conn]struct{}{},
		wake:  make(chan struct{}, 1),
		ka:    newKeepAlive(interval),
	}
	s.lag, s.queueBytes = &observations{}, &observations{}
	s.workers.Add(1)
	go s.work()
	t.Cleanup(s.Close)
	return s
}

// Every connection is pinged again and again from the one schedule, each
// with its own frame; a closed connection leaves it, and the schedule's
// timer is not re-armed once none is left.
func TestKeepAliveOneScheduleForAll(t *testing.T) {
	const n, interval = 40, 500 * time.Millisecond // five slots
	s := kaServer(t, interval)
	conns := make([]*conn, n)
	var wg sync.WaitGroup
	pings := make([]int, n)
	for i := range n {
		server, client := tcpPair(t)
		conns[i] = s.newConn(server, protoSSE)
		frame := []byte{'a' + byte(i%26), '\n'}
		conns[i].keepAlive(frame)
		conns[i].keepAlive(frame) // a second add changes nothing
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := bufio.NewReader(client)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					return
				}
				if string(line) != string(frame) {
					t.Errorf("connection %d got %q, want its own frame %q", i, line, frame)
				}
				pings[i]++
			}
		}()
		time.Sleep(interval / n) // spread over the slots
	}
	if got := s.ka.registered(); got != n {
		t.Fatalf("%d connections in the schedule, want %d", got, n)
	}
	time.Sleep(4 * interval)
	for _, c := range conns {
		c.closeSocket()
	}
	wg.Wait()
	for i, p := range pings {
		if p < 2 {
			t.Errorf("connection %d: %d keep-alives in 4 intervals, want at least 2", i, p)
		}
	}
	if got := s.ka.registered(); got != 0 {
		t.Fatalf("%d connections left in the schedule after all closed", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.ka.mu.Lock()
		armed := s.ka.armed
		s.ka.mu.Unlock()
		if !armed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the keep-alive timer is still armed with no connection left")
		}
		time.Sleep(s.ka.tick)
	}

	// A connection added after it disarmed arms it again.
	server, client := tcpPair(t)
	c := s.newConn(server, protoSSE)
	c.keepAlive([]byte("z\n"))
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(client).ReadString('\n'); err != nil || line != "z\n" {
		t.Fatalf("after re-arming: %q, %v; want a keep-alive", line, err)
	}
	c.closeSocket()
}

// A connection that closes before its keep-alive is added is never added:
// nothing would remove it.
func TestKeepAliveAfterCloseIsNotAdded(t *testing.T) {
	s := kaServer(t, time.Second)
	server, _ := tcpPair(t)
	c := s.newConn(server, protoTransportWS)
	c.closeSocket()
	c.keepAlive([]byte("ping"))
	if got := s.ka.registered(); got != 0 {
		t.Fatalf("%d connections in the schedule, want 0", got)
	}
}
