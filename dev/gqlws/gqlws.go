// Package gqlws is a small GraphQL-over-WebSocket client for tests: both
// subprotocols, raw frames visible, and the close code the server chose.
package gqlws

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocols.
const (
	TransportWS = "graphql-transport-ws" // graphql-ws library
	LegacyWS    = "graphql-ws"           // subscriptions-transport-ws
)

// Msg is one protocol message.
type Msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Notification is the payload of onNotificationReceived.
type Notification struct {
	ID        string `json:"id"`
	Text      string `json:"text"`
	Timestamp int64  `json:"timestamp"`
	Scope     string `json:"scope"`
}

// Client is one WebSocket connection.
type Client struct {
	Conn     *websocket.Conn
	Protocol string
	// Msgs carries every message received, in order, and is closed after
	// the last. The client reads the socket whatever the test does: what
	// the test has not taken yet waits in a queue of any length (a fixed
	// buffer would either stall the reader, making the client a slow
	// consumer, or, big enough never to, cost megabytes a connection).
	Msgs chan Msg

	mu        sync.Mutex
	closeCode int
	closeText string
	closed    chan struct{}

	qmu   sync.Mutex
	queue []Msg
	eof   bool          // the reader ended: Msgs closes once queue is empty
	more  chan struct{} // a message queued, or eof (capacity 1)
}

// handshakeTimeout bounds the WebSocket handshake and, in Connect, the wait
// for connection_ack: generous, for tests that open many connections at
// once on a loaded machine; a server that never answers still fails them.
const handshakeTimeout = 30 * time.Second

// Dial connects with protocol and header (may be nil) without sending
// anything.
func Dial(url, protocol string, header http.Header) (*Client, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{protocol}, HandshakeTimeout: handshakeTimeout}
	conn, resp, err := d.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &Client{Conn: conn, Protocol: protocol, Msgs: make(chan Msg), closed: make(chan struct{}), more: make(chan struct{}, 1)}
	go c.read()
	go c.pump()
	return c, resp, nil
}

// Connect dials and completes connection_init / connection_ack.
func Connect(url, protocol string, initPayload any) (*Client, error) {
	c, _, err := Dial(url, protocol, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Send(Msg{Type: "connection_init", Payload: mustJSON(initPayload)}); err != nil {
		c.Close()
		return nil, err
	}
	for {
		m, err := c.Next(handshakeTimeout)
		if err != nil {
			c.Close()
			return nil, err
		}
		switch m.Type {
		case "connection_ack":
			return c, nil
		case "ka":
		default:
			c.Close()
			return nil, fmt.Errorf("gqlws: expected connection_ack, got %s %s", m.Type, m.Payload)
		}
	}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

func (c *Client) read() {
	defer close(c.closed)
	defer c.push(Msg{}, true)
	for {
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			c.mu.Lock()
			if errors.As(err, &ce) {
				c.closeCode, c.closeText = ce.Code, ce.Text
			} else {
				c.closeCode = -1
				c.closeText = err.Error()
			}
			c.mu.Unlock()
			return
		}
		var m Msg
		if err := json.Unmarshal(data, &m); err != nil {
			m = Msg{Type: "<invalid json>", Payload: data}
		}
		if m.Type == "ping" && c.Protocol == TransportWS {
			// Answer at once, as real clients do, however long the test
			// takes to read: the server closes a peer that misses pongs.
			_ = c.Send(Msg{Type: "pong"})
			continue
		}
		c.push(m, false)
	}
}

// push queues m, or, with eof, marks the end of the messages.
func (c *Client) push(m Msg, eof bool) {
	c.qmu.Lock()
	if eof {
		c.eof = true
	} else {
		c.queue = append(c.queue, m)
	}
	c.qmu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
}

// pump hands the queued messages to Msgs, in order, and closes it after
// the last.
func (c *Client) pump() {
	for {
		c.qmu.Lock()
		if len(c.queue) == 0 {
			eof := c.eof
			c.qmu.Unlock()
			if eof {
				close(c.Msgs)
				return
			}
			<-c.more
			continue
		}
		m := c.queue[0]
		c.queue[0] = Msg{}
		c.queue = c.queue[1:]
		c.qmu.Unlock()
		c.Msgs <- m
	}
}

// Send writes one message.
func (c *Client) Send(m Msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.WriteJSON(m)
}

// SendRaw writes one text frame as is.
func (c *Client) SendRaw(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.WriteMessage(websocket.TextMessage, []byte(s))
}

// Subscribe starts onNotificationReceived(userName) under id, selecting
// every field of Notification.
func (c *Client) Subscribe(id, userName string) error {
	t := "subscribe"
	if c.Protocol == LegacyWS {
		t = "start"
	}
	return c.Send(Msg{ID: id, Type: t, Payload: mustJSON(map[string]any{
		"query":     `subscription($u:String!){onNotificationReceived(userName:$u){id text timestamp scope}}`,
		"variables": map[string]any{"u": userName},
	})})
}

// Unsubscribe stops the subscription id.
func (c *Client) Unsubscribe(id string) error {
	t := "complete"
	if c.Protocol == LegacyWS {
		t = "stop"
	}
	return c.Send(Msg{ID: id, Type: t})
}

// Next returns the next message other than keep-alives, or an error when
// the connection closes or timeout passes.
func (c *Client) Next(timeout time.Duration) (Msg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-c.Msgs:
			if !ok {
				code, text := c.CloseStatus()
				return Msg{}, fmt.Errorf("gqlws: closed with %d %q", code, text)
			}
			switch m.Type {
			case "ka", "pong":
				continue
			}
			return m, nil
		case <-t.C:
			return Msg{}, fmt.Errorf("gqlws: nothing within %s", timeout)
		}
	}
}

// NextNotification returns the next notification that is not a probe.
func (c *Client) NextNotification(timeout time.Duration) (Notification, string, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := c.Next(time.Until(deadline))
		if err != nil {
			return Notification{}, "", err
		}
		if m.Type != "next" && m.Type != "data" {
			return Notification{}, m.ID, fmt.Errorf("gqlws: got %s %s", m.Type, m.Payload)
		}
		var p struct {
			Data struct {
				N Notification `json:"onNotificationReceived"`
			} `json:"data"`
			Errors json.RawMessage `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			return Notification{}, m.ID, err
		}
		if len(p.Errors) > 0 && string(p.Errors) != "null" {
			return Notification{}, m.ID, fmt.Errorf("gqlws: errors %s", p.Errors)
		}
		if len(p.Data.N.Text) >= 6 && p.Data.N.Text[:6] == "probe:" {
			continue
		}
		return p.Data.N, m.ID, nil
	}
}

// CloseStatus is the close code and reason the server sent (-1: the
// connection broke without a close frame; 0: still open).
func (c *Client) CloseStatus() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode, c.closeText
}

// Closed is closed when the connection has ended.
func (c *Client) Closed() <-chan struct{} { return c.closed }

// Close closes the connection with 1000.
func (c *Client) Close() {
	c.mu.Lock()
	_ = c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	c.mu.Unlock()
	_ = c.Conn.Close()
}
