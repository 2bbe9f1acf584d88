package redistest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of a server. Silence makes the connections
// open now stop forwarding what the server sends (the client's bytes still
// reach the server): the connection stays up and delivers nothing, as a
// stuck middlebox or a half-dead link does. Connections made afterwards
// work normally.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu       sync.Mutex
	links    []*link
	wg       sync.WaitGroup
	accepted atomic.Int64
}

type link struct {
	client, server net.Conn
	silent         atomic.Bool
}

// StartProxy listens on a free port and forwards to target; t.Cleanup
// closes it and every connection.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client → server
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
			c.Close()
		}()
		go func() { // server → client, unless silenced
			defer p.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && !l.silent.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			s.Close()
			c.Close()
		}()
	}
}

// Silence stops forwarding from the server on every connection open now,
// and returns how many.
func (p *Proxy) Silence() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.links {
		l.silent.Store(true)
	}
	return len(p.links)
}

// Accepted is how many connections the proxy has accepted: with its
// target down, each is closed at once (a client sees its dial succeed and
// the connection drop).
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for _, l := range p.links {
		l.client.Close()
		l.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
