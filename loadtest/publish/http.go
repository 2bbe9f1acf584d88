package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Mutation publishes with sendNotification over keep-alive HTTP, one
// notice a request, and reports receivedUsers. With idempotency keys each
// call carries a key of its own (a new publish each time, which makes the
// bus remember it).
type Mutation struct {
	url    string
	header http.Header
	client *http.Client
	idem   string // key prefix; "" for no keys
	seq    atomic.Int64
}

const (
	mutation     = `mutation($to: String!, $text: String!) { sendNotification(to: $to, text: $text) { receivedUsers } }`
	mutationIdem = `mutation($to: String!, $text: String!, $key: String) { sendNotification(to: $to, text: $text, idempotencyKey: $key) { receivedUsers } }`
)

// NewMutation posts to url (e.g. http://127.0.0.1:8080/query); conns is the
// size of the keep-alive pool. idempotent sends every call with a fresh
// idempotency key.
func NewMutation(url string, header http.Header, conns int, idempotent bool) *Mutation {
	m := &Mutation{url: url, header: header, client: newClient(conns)}
	if idempotent {
		m.idem = "load-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	}
	return m
}

func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns * 2,
			MaxIdleConnsPerHost: conns * 2,
			MaxConnsPerHost:     conns * 2,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

func (m *Mutation) MaxBatch() int { return 1 }
func (m *Mutation) Close() error  { m.client.CloseIdleConnections(); return nil }

func (m *Mutation) Publish(ctx context.Context, ns []Notice) (int64, int, error) {
	var total int64
	for i, n := range ns {
		var body []byte
		if m.idem == "" {
			body, _ = json.Marshal(map[string]any{"query": mutation,
				"variables": map[string]any{"to": n.User, "text": n.Text}})
		} else {
			body, _ = json.Marshal(map[string]any{"query": mutationIdem,
				"variables": map[string]any{"to": n.User, "text": n.Text, "key": m.idem + strconv.FormatInt(m.seq.Add(1), 10)}})
		}
		var out struct {
			Data struct {
				SendNotification struct {
					ReceivedUsers int64 `json:"receivedUsers"`
				} `json:"sendNotification"`
			} `json:"data"`
			Errors []struct {
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err := post(ctx, m.client, m.url, m.header, body, &out); err != nil {
			return total, len(ns) - i, err
		}
		if len(out.Errors) > 0 {
			return total, len(ns) - i, fmt.Errorf("publish: graphql: %s", out.Errors[0].Message)
		}
		total += out.Data.SendNotification.ReceivedUsers
	}
	return total, 0, nil
}

// BatchMutation publishes with publishBatch, up to batch notices a
// request, and reports the receivedUsers of all of them.
type BatchMutation struct {
	url    string
	header http.Header
	client *http.Client
	batch  int
}

const batchMutation = `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { receivedUsers error { code message } } }`

// NewBatchMutation posts to url; batch is the most notices a request
// carries (pub's MAX_BATCH at most).
func NewBatchMutation(url string, header http.Header, conns, batch int) *BatchMutation {
	return &BatchMutation{url: url, header: header, client: newClient(conns), batch: max(batch, 1)}
}

func (m *BatchMutation) MaxBatch() int { return m.batch }
func (m *BatchMutation) Close() error  { m.client.CloseIdleConnections(); return nil }

func (m *BatchMutation) Publish(ctx context.Context, ns []Notice) (int64, int, error) {
	type input struct {
		Scope string `json:"scope"`
		To    string `json:"to"`
		Text  string `json:"text"`
	}
	in := make([]input, len(ns))
	for i, n := range ns {
		in[i] = input{Scope: "PERSON", To: n.User, Text: n.Text}
	}
	body, _ := json.Marshal(map[string]any{"query": batchMutation, "variables": map[string]any{"in": in}})
	var out struct {
		Data struct {
			PublishBatch []struct {
				ReceivedUsers int64
				Error         *struct{ Code, Message string }
			} `json:"publishBatch"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := post(ctx, m.client, m.url, m.header, body, &out); err != nil {
		return 0, len(ns), err
	}
	if len(out.Errors) > 0 {
		return 0, len(ns), fmt.Errorf("publish: graphql: %s", out.Errors[0].Message)
	}
	var total int64
	failed := len(ns) - len(out.Data.PublishBatch)
	var first error
	for _, r := range out.Data.PublishBatch {
		if r.Error != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("publish: %s: %s", r.Error.Code, r.Error.Message)
			}
			continue
		}
		total += r.ReceivedUsers
	}
	return total, failed, first
}

func post(ctx context.Context, c *http.Client, url string, header http.Header, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("publish: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish: %s: %.200s", resp.Status, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("publish: decode %.100q: %w", raw, err)
	}
	return nil
}

// Centrifugo publishes through Centrifugo's server HTTP API: /api/publish
// for one notice, /api/batch for several.
type Centrifugo struct {
	base       string
	header     http.Header
	client     *http.Client
	channelFmt string
	batch      int
}

// NewCentrifugo talks to the API at base (e.g. http://127.0.0.1:8000/api).
func NewCentrifugo(base, apiKey, channelFmt string, conns, batch int) *Centrifugo {
	return &Centrifugo{base: base, header: http.Header{"X-Api-Key": {apiKey}},
		client: newClient(conns), channelFmt: channelFmt, batch: max(batch, 1)}
}

func (c *Centrifugo) MaxBatch() int { return c.batch }
func (c *Centrifugo) Close() error  { c.client.CloseIdleConnections(); return nil }

type centPub struct {
	Channel string  `json:"channel"`
	Data    centMsg `json:"data"`
}

type centMsg struct {
	ID        string `json:"id"`
	Text      string `json:"text"`
	Timestamp int64  `json:"timestamp"`
}

func (c *Centrifugo) pubOf(n Notice, now time.Time, seq int) centPub {
	return centPub{
		Channel: replaceUser(c.channelFmt, n.User),
		Data:    centMsg{ID: strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.Itoa(seq), Text: n.Text, Timestamp: now.Unix()},
	}
}

func (c *Centrifugo) Publish(ctx context.Context, ns []Notice) (int64, int, error) {
	now := time.Now()
	if len(ns) == 1 {
		var out struct {
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		body, _ := json.Marshal(c.pubOf(ns[0], now, 0))
		if err := post(ctx, c.client, c.base+"/publish", c.header, body, &out); err != nil {
			return -1, 1, err
		}
		if out.Error != nil {
			return -1, 1, fmt.Errorf("publish: centrifugo: %s", out.Error.Message)
		}
		return -1, 0, nil
	}
	type cmd struct {
		Publish centPub `json:"publish"`
	}
	cmds := make([]cmd, len(ns))
	for i, n := range ns {
		cmds[i].Publish = c.pubOf(n, now, i)
	}
	body, _ := json.Marshal(map[string]any{"commands": cmds, "parallel": true})
	var out struct {
		Replies []struct {
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		} `json:"replies"`
	}
	if err := post(ctx, c.client, c.base+"/batch", c.header, body, &out); err != nil {
		return -1, len(ns), err
	}
	failed := 0
	var first error
	for _, r := range out.Replies {
		if r.Error != nil {
			failed++
			if first == nil {
				first = fmt.Errorf("publish: centrifugo: %s", r.Error.Message)
			}
		}
	}
	return -1, failed, first
}

func replaceUser(tmpl, user string) string {
	if i := bytes.Index([]byte(tmpl), []byte("%s")); i >= 0 {
		return tmpl[:i] + user + tmpl[i+2:]
	}
	return tmpl + user
}
