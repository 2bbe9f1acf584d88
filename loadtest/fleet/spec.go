// Package fleet holds the load tool's WebSocket clients. A coordinator (the
// parent process) starts worker processes, each holding a slice of the
// connections under its own file limit, and drives them through one JSON
// command per line on stdin, one JSON answer per line on stdout.
package fleet

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/oshirase/oshirase/loadtest/hist"
)

// Layout places subscriptions: subscription s (0 <= s < Subs) is for user
// s % Users and rides connection s / SubsPerConn. Consecutive subscriptions
// of one connection thus belong to different users, and the Subs/Users
// tabs of one user are spread over different connections, like a person's
// browser tabs.
type Layout struct {
	Subs        int    `json:"subs"`
	Users       int    `json:"users"`
	SubsPerConn int    `json:"subsPerConn"`
	UserPrefix  string `json:"userPrefix"`
}

// Conns is the number of connections the layout needs.
func (l Layout) Conns() int {
	if l.SubsPerConn <= 0 {
		return l.Subs
	}
	return (l.Subs + l.SubsPerConn - 1) / l.SubsPerConn
}

// User is the name of user u.
func (l Layout) User(u int) string { return l.UserPrefix + strconv.Itoa(u) }

// UserOf is the user index of subscription s.
func (l Layout) UserOf(s int) int { return s % max(l.Users, 1) }

// SubsOf returns the subscriptions on connection c.
func (l Layout) SubsOf(c int) (first, last int) {
	k := max(l.SubsPerConn, 1)
	return c * k, min((c+1)*k, l.Subs)
}

// Split divides connections [0, Conns) into parts of at most perPart,
// as evenly as possible.
func (l Layout) Split(perPart int) [][2]int {
	n := l.Conns()
	parts := max(1, (n+perPart-1)/max(perPart, 1))
	out := make([][2]int, 0, parts)
	for p := 0; p < parts; p++ {
		out = append(out, [2]int{p * n / parts, (p + 1) * n / parts})
	}
	return out
}

// ConnectSpec tells a worker which connections to open and how.
type ConnectSpec struct {
	Layout
	URL        string `json:"url"`
	Proto      string `json:"proto"`
	ConnFirst  int    `json:"connFirst"`
	ConnLast   int    `json:"connLast"`
	SrcIPs     int    `json:"srcIPs"`     // spread over 127.0.0.2 .. 127.0.0.(1+SrcIPs)
	Parallel   int    `json:"parallel"`   // concurrent handshakes
	JWTSecret  string `json:"jwtSecret"`  // if set, HS256 token per connection (sub = user of its first subscription)
	ChannelFmt string `json:"channelFmt"` // Centrifugo channel of a user, "%s" is the user
	TimeoutSec int    `json:"timeoutSec"` // per handshake
	// Resume: subscriptions select their cursor, the worker keeps each
	// one's last, and a reconnect resumes after it (proto.ResumeFrame).
	Resume bool `json:"resume,omitempty"`
	// Expect (reconnect): notices each subscription should receive; the
	// worker notes when each has them all.
	Expect int `json:"expect,omitempty"`
}

// Command is one line sent to a worker.
type Command struct {
	Op      string       `json:"op"` // connect, unready, reset, stats, disconnect, reconnect, close
	Connect *ConnectSpec `json:"connect,omitempty"`
}

// Reply is a worker's answer to one Command.
type Reply struct {
	Err string `json:"err,omitempty"`

	// connect
	Conns        int     `json:"conns,omitempty"`
	Subs         int     `json:"subs,omitempty"`
	ConnectErrs  int     `json:"connectErrs,omitempty"`
	FirstError   string  `json:"firstError,omitempty"`
	ConnectSecs  float64 `json:"connectSecs,omitempty"`
	ConnectedSub int     `json:"connectedSub,omitempty"`

	// unready
	Unready []int `json:"unready,omitempty"`

	// disconnect: subscriptions holding a cursor to resume after
	Cursors int `json:"cursors,omitempty"`

	// stats
	Caught      int64          `json:"caught,omitempty"`     // subscriptions that received Expect notices since the reconnect
	CaughtLast  int64          `json:"caughtLast,omitempty"` // Unix ns when the last of them did
	Extra       int64          `json:"extra,omitempty"`      // notices past Expect (duplicates)
	Retries     int64          `json:"retries,omitempty"`    // reopens of resuming connections the server closed
	Received    int64          `json:"received,omitempty"`
	Probes      int64          `json:"probes,omitempty"`
	SubErrors   int64          `json:"subErrors,omitempty"`
	Disconnects int64          `json:"disconnects,omitempty"`
	Unknown     int64          `json:"unknown,omitempty"`
	LastRecv    int64          `json:"lastRecv,omitempty"` // Unix ns of the last measured delivery
	FirstRecv   int64          `json:"firstRecv,omitempty"`
	Hist        *hist.Snapshot `json:"hist,omitempty"`
}

// Token returns an HS256 JWT for user, valid for a day.
func Token(secret, user string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": user, "exp": time.Now().Add(24 * time.Hour).Unix()})
	body := head + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return body + "." + enc.EncodeToString(m.Sum(nil))
}

// channelOf fills a "%s" template.
func channelOf(tmpl, user string) string { return strings.Replace(tmpl, "%s", user, 1) }
