package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// A randomized run of resume through the binaries: 30 users of two tenants
// (the same user names in both), three stores each, on a subscription each;
// publishers send notices of every scope the whole time while every client
// disconnects at random and comes back after its last cursor — over
// graphql-transport-ws, legacy graphql-ws or SSE (Last-Event-ID), picked
// anew at each reconnect — or reloads the page: reads the recent list to
// the end and subscribes after its newest edge. Every notice a client
// receives is checked as it arrives against the exact sequence of each of
// its channels (each channel has one publisher, so its order is known):
// the next one of its own channel, never a gap, a duplicate or another
// user's or tenant's notice; at the end every client holds every notice of
// its four channels, with the ids pub answered.
//
// RESUME_SEED=<n> replays a run's choices (its seed is logged);
// RESUME_DURATION=<duration> (default 20s) sets how long publishing runs.
func TestResumeRandomized(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("RESUME_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("RESUME_SEED=%q: %v", v, err)
		}
	}
	duration := 20 * time.Second
	if v := os.Getenv("RESUME_DURATION"); v != "" {
		var err error
		if duration, err = time.ParseDuration(v); err != nil {
			t.Fatalf("RESUME_DURATION=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (RESUME_SEED=%d replays this run's choices), publishing for %s", seed, seed, duration)

	r := harness.StartRedis(t)
	// History large enough that nothing is trimmed: a page reload reads
	// every notice back. Generous queues and write deadline: this is a
	// resume test, not a slow-consumer one.
	common := []string{"AUTH_MODE=jwt", "JWT_SECRET=" + jwtSecret, "ALLOWED_ORIGINS=" + frontend, "HISTORY_SIZE=20000"}
	const acmeKey, globexKey = "acme-key-0123456789", "globex-key-0123456789"
	pub := harness.StartPub(t, r, append(common, "PUBLISHER_API_KEYS="+acmeKey+":acme,"+globexKey+":globex,"+platformKey+":*")...)
	sub := harness.StartSub(t, r, append(common, "QUEUE_SIZE=4096", "WRITE_TIMEOUT=30s")...)
	keyOf := map[string]string{"acme": acmeKey, "globex": globexKey}

	run := &randomRun{t: t, seed: seed, sub: sub, channels: map[string]*rchannel{}}
	run.ctx, run.cancel = context.WithCancel(context.Background())
	defer run.cancel()

	// The channels, each with the one publisher that sends to it.
	channel := func(name, scope, key string, input map[string]any) *rchannel {
		c := &rchannel{name: name, scope: scope, key: key, input: input}
		run.channels[name] = c
		return c
	}
	public := channel("public", "PUBLIC", platformKey, map[string]any{"scope": "PUBLIC"})
	groups := [][]*rchannel{{public}}
	for _, tenant := range []string{"acme", "globex"} {
		company := channel(tenant+"/c", "COMPANY", keyOf[tenant], map[string]any{"scope": "COMPANY"})
		groups = append(groups, []*rchannel{company})
		for s := range 3 {
			store := fmt.Sprintf("store-%d", s)
			sc := channel(tenant+"/s/"+store, "STORE", keyOf[tenant], map[string]any{"scope": "STORE", "to": store})
			group := []*rchannel{sc}
			for u := range 5 {
				user := fmt.Sprintf("user-%d-%d", s, u)
				pc := channel(tenant+"/p/"+user, "PERSON", keyOf[tenant], map[string]any{"scope": "PERSON", "to": user})
				group = append(group, pc)
				run.members = append(run.members, &rmember{
					run: run, tenant: tenant, store: store, user: user,
					token:    userToken(t, user, tenant, store),
					channels: []*rchannel{pc, sc, company, public},
				})
			}
			groups = append(groups, group)
		}
	}

	// Every client subscribes afresh and is live before publishing starts.
	protos := []string{gqlws.TransportWS, gqlws.LegacyWS, "sse"}
	first := make([]*rstream, len(run.members))
	for i, m := range run.members {
		m.rng = rand.New(rand.NewPCG(seed, uint64(100+i)))
		m.reset()
		var err error
		if first[i], err = m.open(protos[i%3], ""); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	waitReceiversAs(t, pub, platformKey, map[string]any{"scope": "PUBLIC"}, len(run.members))

	var clients sync.WaitGroup
	for i, m := range run.members {
		clients.Add(1)
		go func() {
			defer clients.Done()
			m.loop(first[i])
		}()
	}
	var publishers sync.WaitGroup
	stopPublishing := time.Now().Add(duration)
	for g, group := range groups {
		publishers.Add(1)
		go func() {
			defer publishers.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for time.Now().Before(stopPublishing) && run.ctx.Err() == nil {
				c := group[rng.IntN(len(group))]
				if err := c.publish(pub); err != nil {
					run.fail("publish to %s: %v", c.name, err)
					return
				}
				select {
				case <-time.After(time.Duration(20+rng.IntN(100)) * time.Millisecond):
				case <-run.ctx.Done():
				}
			}
		}()
	}
	publishers.Wait()
	run.final.Store(true) // the counts are final: clients now catch up and stop
	clients.Wait()
	if err := run.failure(); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}

	notices, deliveries := 0, 0
	for _, c := range run.channels {
		notices += len(c.ids)
	}
	for _, m := range run.members {
		for _, c := range m.channels {
			got := m.got[c.name]
			if len(got) != len(c.ids) {
				t.Fatalf("seed %d: %s holds %d of %s's %d notices", seed, m, len(got), c.name, len(c.ids))
			}
			for i, id := range got {
				if id != c.ids[i] {
					t.Fatalf("seed %d: %s got id %s as %s#%d; pub answered %s", seed, m, id, c.name, i+1, c.ids[i])
				}
			}
			deliveries += len(got)
		}
	}
	var resumes, reloads int64
	var byProto [3]int64
	for _, m := range run.members {
		resumes += m.resumes
		reloads += m.reloads
		for i := range byProto {
			byProto[i] += m.byProto[i]
		}
	}
	if resumes < int64(len(run.members)) || reloads == 0 {
		t.Fatalf("seed %d: only %d resumes and %d reloads: the run did not exercise resume", seed, resumes, reloads)
	}
	t.Logf("%d notices on %d channels; %d deliveries checked in sequence; %d resumes after a cursor and %d page reloads from the list (reconnects over graphql-transport-ws %d, graphql-ws %d, SSE %d)",
		notices, len(run.channels), deliveries, resumes, reloads, byProto[0], byProto[1], byProto[2])
}

// rchannel is one channel of the run and the one publisher's record of it.
type rchannel struct {
	name, scope, key string
	input            map[string]any

	mu  sync.Mutex
	ids []string // pub's id of notice #i+1, in publish order
}

// publish sends this channel's next notice, "<channel>#<n>", and records
// the id pub answered. One goroutine publishes to a channel, so its
// notices' order is the order of these calls.
func (c *rchannel) publish(pub *harness.Service) error {
	c.mu.Lock()
	n := len(c.ids) + 1
	c.mu.Unlock()
	in := map[string]any{"text": fmt.Sprintf("%s#%d", c.name, n)}
	for k, v := range c.input {
		in[k] = v
	}
	r, err := pub.Post("/query", `mutation($in:PublishInput!){publish(input:$in){id}}`,
		map[string]any{"in": in}, "Authorization", "Bearer "+c.key)
	if err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%s (%v)", r.Errors[0].Message, r.Errors[0].Extensions["code"])
	}
	var d struct{ Publish struct{ ID string } }
	if err := json.Unmarshal(r.Data, &d); err != nil || d.Publish.ID == "" {
		return fmt.Errorf("no id in %s (%v)", r.Data, err)
	}
	c.mu.Lock()
	c.ids = append(c.ids, d.Publish.ID)
	c.mu.Unlock()
	return nil
}

func (c *rchannel) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}

type randomRun struct {
	t        *testing.T
	seed     uint64
	sub      *harness.Service
	channels map[string]*rchannel
	members  []*rmember
	final    atomic.Bool // publishing is over

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error
}

// fail records the run's first failure and stops everything.
func (r *randomRun) fail(format string, args ...any) {
	r.mu.Lock()
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
	r.mu.Unlock()
	r.cancel()
}

func (r *randomRun) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// rmember is one user's client: its channels, what it holds of each, the
// cursor after the last notice it received, and the last things that
// happened to it (for a failure's message).
type rmember struct {
	run                 *randomRun
	tenant, store, user string
	token               string
	channels            []*rchannel
	rng                 *rand.Rand

	got     map[string][]string // channel → ids received, in order
	last    string              // the cursor after the last notice received
	events  []string            // the last things that happened, newest last
	resumes int64
	reloads int64
	byProto [3]int64
}

func (m *rmember) String() string { return m.tenant + "/" + m.store + "/" + m.user }

func (m *rmember) note(format string, args ...any) {
	m.events = append(m.events, fmt.Sprintf(format, args...))
	if len(m.events) > 12 {
		m.events = m.events[1:]
	}
}

// failf fails the run with what happened to m lately.
func (m *rmember) failf(format string, args ...any) {
	m.run.fail("%s: %s\n  its channels now: %s\n  what it saw last:\n    %s",
		m, fmt.Sprintf(format, args...), m.standing(), strings.Join(m.events, "\n    "))
}

// standing is, per channel, how many notices m holds of how many published.
func (m *rmember) standing() string {
	var parts []string
	for _, c := range m.channels {
		parts = append(parts, fmt.Sprintf("%s %d/%d", c.name, len(m.got[c.name]), c.count()))
	}
	return strings.Join(parts, ", ")
}

func (m *rmember) reset() {
	m.got = map[string][]string{}
	m.last = ""
}

func (m *rmember) caughtUp() bool {
	for _, c := range m.channels {
		if len(m.got[c.name]) != c.count() {
			return false
		}
	}
	return true
}

// take checks one received notice against the sequence of its channel and
// keeps it. False when the run must stop.
func (m *rmember) take(id, text, scope, cursor string) bool {
	if strings.HasPrefix(text, "probe:") {
		m.last = cursor
		return true
	}
	name, nth, ok := strings.Cut(text, "#")
	n, err := strconv.Atoi(nth)
	c := m.run.channels[name]
	if !ok || err != nil || c == nil {
		m.failf("got %q (id %s): not a notice of this run", text, id)
		return false
	}
	mine := false
	for _, own := range m.channels {
		mine = mine || own == c
	}
	switch have := len(m.got[name]); {
	case !mine:
		m.failf("got %s (id %s): a LEAK — not one of its channels", text, id)
	case scope != c.scope:
		m.failf("got %s with scope %s, published as %s", text, scope, c.scope)
	case cursor == "":
		m.failf("got %s without a cursor", text)
	case n <= have:
		m.failf("got %s again: a DUPLICATE (it holds %s#1..%d)", text, name, have)
	case n > have+1:
		m.failf("got %s after %s#%d: a GAP of %d", text, name, have, n-have-1)
	default:
		m.got[name] = append(m.got[name], id)
		m.last = cursor
		m.note("%s", text)
		return true
	}
	return false
}

// loop runs m's client until the run ends: read for a while, disconnect,
// stay away a while, come back after the last cursor (or reload the page);
// once publishing is over, come back one last time and catch up.
func (m *rmember) loop(st *rstream) {
	protos := []string{gqlws.TransportWS, gqlws.LegacyWS, "sse"}
	for {
		final := m.run.final.Load()
		lifetime := time.Duration(200+m.rng.IntN(2300)) * time.Millisecond
		if final {
			lifetime = time.Minute
		}
		ok := m.read(st, lifetime, final)
		st.close()
		if !ok || final || m.run.ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(time.Duration(m.rng.IntN(800)) * time.Millisecond):
		case <-m.run.ctx.Done():
			return
		}
		if m.rng.IntN(100) < 15 {
			if !m.reload() {
				return
			}
		} else {
			m.resumes++
		}
		p := m.rng.IntN(3)
		m.byProto[p]++
		m.note("reconnects over %s after %.12s…", protos[p], m.last)
		var err error
		if st, err = m.open(protos[p], m.last); err != nil {
			m.failf("reconnecting over %s: %v", protos[p], err)
			return
		}
	}
}

// read takes what st delivers for lifetime; in the final round until m has
// caught up (then briefly on, to see that nothing more comes).
func (m *rmember) read(st *rstream, lifetime time.Duration, final bool) bool {
	timeout := time.After(lifetime)
	var settle <-chan time.Time
	if final && m.caughtUp() {
		settle = time.After(300 * time.Millisecond)
	}
	for {
		select {
		case ev, open := <-st.out:
			switch {
			case !open:
				m.failf("the server ended the subscription (%s)", st.why())
				return false
			case ev.code != "":
				m.failf("the subscription failed with %s", ev.code)
				return false
			case !m.take(ev.id, ev.text, ev.scope, ev.cursor):
				return false
			}
			if final && settle == nil && m.caughtUp() {
				settle = time.After(300 * time.Millisecond)
			}
		case <-settle:
			return true
		case <-timeout:
			if final {
				m.failf("not caught up %s after publishing ended", lifetime)
				return false
			}
			return true
		case <-m.run.ctx.Done():
			return false
		}
	}
}

// reload is a page load: the list read to its end, oldest first, takes
// the place of what m held; then m subscribes after the first page's
// startCursor (its newest edge's cursor, or where the read stood when
// nothing was listed yet).
func (m *rmember) reload() bool {
	m.reloads++
	m.note("reloads the page: reads the list")
	var edges []listEdge
	var after, start *string
	for {
		p, err := m.listPage(after)
		if err != nil {
			m.failf("reading the list: %v", err)
			return false
		}
		if after == nil {
			start = p.PageInfo.StartCursor
		}
		edges = append(edges, p.Edges...)
		if !p.PageInfo.HasNextPage {
			break
		}
		after = p.PageInfo.EndCursor
	}
	m.reset()
	for i := len(edges) - 1; i >= 0; i-- {
		e := edges[i]
		if !m.take(e.Node.ID, e.Node.Text, e.Node.Scope, e.Cursor) {
			return false
		}
	}
	switch {
	case start == nil:
		m.failf("the list's first page has no startCursor")
		return false
	case len(edges) > 0 && (m.last != edges[0].Cursor || *start != m.last):
		m.failf("the list's newest edge is not its first, or not its startCursor")
		return false
	case len(edges) == 0:
		m.last = *start // nothing listed yet: subscribe after where the read stood
	}
	return true
}

func (m *rmember) listPage(after *string) (*listPage, error) {
	vars := map[string]any{"u": m.user, "first": 100}
	if after != nil {
		vars["after"] = *after
	}
	r, err := m.run.sub.Post("/graphql", notificationsQuery, vars, "Authorization", "Bearer "+m.token)
	if err != nil {
		return nil, err
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("%s (%v)", r.Errors[0].Message, r.Errors[0].Extensions["code"])
	}
	var d struct{ Notifications listPage }
	err = json.Unmarshal(r.Data, &d)
	return &d.Notifications, err
}

// revent is one thing a subscription delivered: a notice, or an error's
// code.
type revent struct{ id, text, scope, cursor, code string }

type rstream struct {
	out   chan revent
	close func()
	why   func() string // why the stream ended
}

const randomQuery = `subscription($u:String!,$a:String){onNotificationReceived(userName:$u,after:$a){id text scope cursor}}`

func decodeEvent(payload []byte) revent {
	var p struct {
		Data *struct {
			N struct{ ID, Text, Scope, Cursor string } `json:"onNotificationReceived"`
		}
		Errors []struct{ Extensions struct{ Code string } }
	}
	if err := json.Unmarshal(payload, &p); err != nil || (p.Data == nil && len(p.Errors) == 0) {
		return revent{code: fmt.Sprintf("UNREADABLE %q", payload)}
	}
	if len(p.Errors) > 0 {
		return revent{code: p.Errors[0].Extensions.Code}
	}
	n := p.Data.N
	return revent{id: n.ID, text: n.Text, scope: n.Scope, cursor: n.Cursor}
}

// open subscribes m over proto, after the cursor after ("": afresh): in
// the variables on a WebSocket, as Last-Event-ID on SSE.
func (m *rmember) open(proto, after string) (*rstream, error) {
	st := &rstream{out: make(chan revent, 10000)}
	vars := map[string]any{"u": m.user}
	if proto != "sse" {
		if after != "" {
			vars["a"] = after
		}
		c, err := gqlws.Connect(m.run.sub.WSURL(), proto, map[string]any{"Authorization": "Bearer " + m.token})
		if err != nil {
			return nil, err
		}
		typ := "subscribe"
		if proto == gqlws.LegacyWS {
			typ = "start"
		}
		b, _ := json.Marshal(map[string]any{"id": "1", "type": typ, "payload": map[string]any{"query": randomQuery, "variables": vars}})
		if err := c.SendRaw(string(b)); err != nil {
			c.Close()
			return nil, err
		}
		var why atomic.Value
		why.Store("")
		go func() {
			defer close(st.out)
			for {
				msg, err := c.Next(time.Hour)
				switch {
				case err != nil:
					why.Store(err.Error())
					return
				case msg.Type == "next" || msg.Type == "data":
					st.out <- decodeEvent(msg.Payload)
				case msg.Type == "complete" || msg.Type == "error":
					why.Store(fmt.Sprintf("%s %s", msg.Type, msg.Payload))
					return
				}
			}
		}()
		st.close = func() { c.Close(); go drainEvents(st.out) }
		st.why = func() string { return why.Load().(string) }
		return st, nil
	}
	body, _ := json.Marshal(map[string]any{"query": randomQuery, "variables": vars})
	ctx, cancel := context.WithCancel(m.run.ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, m.run.sub.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+m.token)
	if after != "" {
		req.Header.Set("Last-Event-ID", after)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("SSE answered %s", resp.Status)
	}
	var why atomic.Value
	why.Store("the stream ended")
	go func() {
		defer close(st.out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var id, event, data string
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "":
				switch event {
				case "next":
					ev := decodeEvent([]byte(data))
					if ev.code == "" && ev.cursor != id {
						ev.code = fmt.Sprintf("SSE id %q is not the event's cursor %q", id, ev.cursor)
					}
					st.out <- ev
				case "complete":
					why.Store("complete")
					return
				}
				id, event, data = "", "", ""
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data += line[6:]
			}
		}
		if sc.Err() != nil {
			why.Store(sc.Err().Error())
		}
	}()
	st.close = func() { cancel(); resp.Body.Close(); go drainEvents(st.out) }
	st.why = func() string { return why.Load().(string) }
	return st, nil
}

func drainEvents(out chan revent) {
	for range out {
	}
}
