package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

const (
	batchMutation = `mutation($in:[PublishInput!]!){publishBatch(inputs:$in){receivedUsers id timestamp error{code message}}}`
	idemMutation  = `mutation($to:String!,$text:String!,$key:String){sendNotification(to:$to,text:$text,idempotencyKey:$key){receivedUsers id timestamp}}`
)

type batchResult struct {
	ReceivedUsers *int
	ID            *string
	Timestamp     *int64
	Error         *struct{ Code, Message string }
}

func publishBatch(t *testing.T, pub *harness.Service, key string, inputs []map[string]any) ([]batchResult, *harness.GraphQLResponse) {
	t.Helper()
	r, err := pub.Post("/query", batchMutation, map[string]any{"in": inputs}, "Authorization", "Bearer "+key)
	if err != nil {
		t.Fatalf("publishBatch: %v", err)
	}
	var d struct{ PublishBatch []batchResult }
	if len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, &d); err != nil {
			t.Fatalf("publishBatch answer: %v: %s", err, r.Data)
		}
	}
	return d.PublishBatch, r
}

// A batch of 1,000 notices of every scope, a few of them invalid or
// addressed where the key may not reach: each valid one is delivered once
// to exactly its audience with the right receivedUsers; each refused one
// has its code and fails alone. One more than MAX_BATCH is refused whole.
func TestPublishBatchOfEveryScope(t *testing.T) {
	s := jwtStack(t, "QUEUE_SIZE=4096", "WRITE_QUEUE_BYTES=64MiB")
	const acmeKey = "acme-key-0123456789"
	stores := []string{"s1", "s1", "s1", "s2", "s2", "s2"}
	users := make([]*gqlws.Client, len(stores))
	for i, store := range stores {
		name := fmt.Sprint("u", i)
		users[i] = connectAs(t, s.sub, gqlws.TransportWS, userToken(t, name, "acme", store))
		subscribe(t, users[i], "1", name)
		waitReceiversAs(t, s.pub, acmeKey, map[string]any{"scope": "PERSON", "to": name}, 1)
	}
	outsider := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "u0", "globex", "s1"))
	subscribe(t, outsider, "1", "u0")
	waitReceiversAs(t, s.pub, "globex-key-0123456789", map[string]any{"scope": "PERSON", "to": "u0"}, 1)
	waitReceiversAs(t, s.pub, acmeKey, map[string]any{"scope": "COMPANY"}, len(stores))

	pad := strings.Repeat("·", 300) // ~600 bytes a notice: the batch is ~0.7 MB, under the default MAX_BODY_BYTES
	var inputs []map[string]any
	want := make([][]string, len(stores)) // texts each user must get, in order
	wantReceived := map[int]int{}
	invalid := map[int]string{
		7:   "BAD_USER_INPUT", // no to
		123: "FORBIDDEN",      // another tenant
		500: "FORBIDDEN",      // everyone
		998: "BAD_USER_INPUT", // empty text
		999: "BAD_USER_INPUT", // company with a to
	}
	for i := range 1000 {
		text := fmt.Sprintf("n%04d %s", i, pad)
		in := map[string]any{"text": text}
		switch code := invalid[i]; {
		case i == 7:
			in["scope"] = "PERSON"
		case i == 123:
			in["scope"], in["to"], in["tenant"] = "PERSON", "u0", "globex"
		case i == 500:
			in["scope"] = "PUBLIC"
		case i == 998:
			in["scope"], in["to"], in["text"] = "PERSON", "u1", ""
		case i == 999:
			in["scope"], in["to"] = "COMPANY", "u1"
		case code == "" && i%5 == 0:
			in["scope"] = "COMPANY"
			wantReceived[i] = len(stores)
			for u := range stores {
				want[u] = append(want[u], text)
			}
		case i%5 == 1:
			store := []string{"s1", "s2"}[i/5%2]
			in["scope"], in["to"] = "STORE", store
			wantReceived[i] = 3
			for u, st := range stores {
				if st == store {
					want[u] = append(want[u], text)
				}
			}
		default:
			u := i % len(stores)
			in["scope"], in["to"] = "PERSON", fmt.Sprint("u", u)
			wantReceived[i] = 1
			want[u] = append(want[u], text)
		}
		inputs = append(inputs, in)
	}
	// gqlgen runs the document the first time; pub/graph.Prepared answers
	// it from a plan after: the batch below goes through the plan.
	if res, r := publishBatch(t, s.pub, acmeKey, []map[string]any{{"scope": "PERSON", "to": "nobody", "text": "learn"}}); len(res) != 1 || res[0].ReceivedUsers == nil || *res[0].ReceivedUsers != 0 {
		t.Fatalf("first publishBatch: %+v, %+v", res, r)
	}
	prepared := metric(t, s.pub, "oshirase_pub_prepared_total")
	res, r := publishBatch(t, s.pub, acmeKey, inputs)
	if r.Status != http.StatusOK || len(r.Errors) > 0 || len(res) != len(inputs) {
		t.Fatalf("publishBatch: HTTP %d, errors %+v, %d results", r.Status, r.Errors, len(res))
	}
	if got := metric(t, s.pub, "oshirase_pub_prepared_total"); got != prepared+1 {
		t.Fatalf("prepared_total %d after the batch, was %d: not answered from a plan", got, prepared)
	}
	ids := map[string]bool{}
	for i, got := range res {
		if code, bad := invalid[i]; bad {
			if got.Error == nil || got.Error.Code != code || got.ID != nil || got.ReceivedUsers != nil {
				t.Fatalf("input %d: %+v, want only an error %s", i, got, code)
			}
			continue
		}
		if got.Error != nil || got.ID == nil || got.Timestamp == nil || got.ReceivedUsers == nil || *got.ReceivedUsers != wantReceived[i] || ids[*got.ID] {
			t.Fatalf("input %d: %+v, want receivedUsers %d and a fresh id", i, got, wantReceived[i])
		}
		ids[*got.ID] = true
	}
	// Notices of one channel arrive in order; of different channels
	// (person, store, company) in any order.
	for u, c := range users {
		got := map[string]bool{}
		for k := range want[u] {
			n, _, err := c.NextNotification(20 * time.Second)
			if err != nil || !ids[n.ID] || got[n.Text] {
				t.Fatalf("u%d, notice %d of %d: %+v, %v", u, k, len(want[u]), n, err)
			}
			got[n.Text] = true
		}
		for _, text := range want[u] {
			if !got[text] {
				t.Fatalf("u%d did not get %.5s", u, text)
			}
		}
	}
	for _, c := range users {
		expectSilence(t, c, 100*time.Millisecond)
	}
	expectSilence(t, outsider, 10*time.Millisecond)

	// One more than MAX_BATCH: refused whole, nothing published — also
	// when some of its inputs are refused on their own (another tenant):
	// every input the caller sent counts.
	for _, refused := range []int{0, 10} {
		over := make([]map[string]any, 1001)
		for i := range over {
			over[i] = map[string]any{"scope": "PERSON", "to": "u0", "text": "over"}
			if i < refused {
				over[i]["tenant"] = "globex"
			}
		}
		res, r = publishBatch(t, s.pub, acmeKey, over)
		if r.Status != http.StatusOK || len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != "BAD_USER_INPUT" || res != nil {
			t.Fatalf("a batch over MAX_BATCH, %d inputs refused on their own: HTTP %d, %+v, %d results", refused, r.Status, r.Errors, len(res))
		}
		expectSilence(t, users[0], 200*time.Millisecond)
		expectSilence(t, outsider, 10*time.Millisecond)
	}
}

func sendIdempotent(pub *harness.Service, timeout time.Duration, to, text, key string) (batchResult, error) {
	body, _ := json.Marshal(map[string]any{"query": idemMutation, "variables": map[string]any{"to": to, "text": text, "key": key}})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, pub.URL+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return batchResult{}, err
	}
	defer resp.Body.Close()
	var r struct {
		Data   struct{ SendNotification *batchResult }
		Errors []struct {
			Message    string
			Extensions struct{ Code string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return batchResult{}, err
	}
	if len(r.Errors) > 0 {
		return batchResult{}, fmt.Errorf("%s: %s", r.Errors[0].Extensions.Code, r.Errors[0].Message)
	}
	return *r.Data.SendNotification, nil
}

// Idempotency keys through the binaries: a retry after the client gave up
// on a publish held up by a frozen Redis, 50 concurrent calls with one
// key, the key with another text, and the key after IDEMPOTENCY_TTL: one
// delivery each time a key is new, none for a retry.
func TestIdempotentPublish(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	subscribe(t, c, "1", "ida")
	s.pub.WaitReceivers("ida", 1)

	// The client times out while Redis is frozen; pub's publish goes on
	// (PUBLISH_TIMEOUT) and lands when Redis thaws. The retry answers it.
	s.redis.Freeze()
	_, err := sendIdempotent(s.pub, 300*time.Millisecond, "ida", "after a timeout", "k-timeout")
	s.redis.Thaw()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the first call, Redis frozen: %v, want the client's timeout", err)
	}
	retry, err := sendIdempotent(s.pub, 10*time.Second, "ida", "after a timeout", "k-timeout")
	if err != nil || retry.ID == nil || *retry.ReceivedUsers != 1 {
		t.Fatalf("retry: %+v, %v", retry, err)
	}
	n := expectNotice(t, c, "after a timeout")
	if n.ID != *retry.ID || n.Timestamp != *retry.Timestamp {
		t.Fatalf("delivered %+v, the retry answered %+v", n, retry)
	}
	expectSilence(t, c, 300*time.Millisecond)

	// 50 concurrent calls with one key: one delivery, 50 equal answers.
	answers := make([]batchResult, 50)
	errs := make([]error, 50)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = sendIdempotent(s.pub, 10*time.Second, "ida", "fifty calls", "k-50")
		}()
	}
	wg.Wait()
	for i, a := range answers {
		if errs[i] != nil || *a.ID != *answers[0].ID || *a.ReceivedUsers != 1 || *a.Timestamp != *answers[0].Timestamp {
			t.Fatalf("call %d: %+v, %v; call 0: %+v", i, a, errs[i], answers[0])
		}
	}
	if n := expectNotice(t, c, "fifty calls"); n.ID != *answers[0].ID {
		t.Fatalf("delivered %+v, answered %s", n, *answers[0].ID)
	}
	expectSilence(t, c, 300*time.Millisecond)

	// The key with another text is refused, and nothing goes out.
	if _, err := sendIdempotent(s.pub, 10*time.Second, "ida", "another text", "k-50"); err == nil || !strings.HasPrefix(err.Error(), "BAD_USER_INPUT") {
		t.Fatalf("k-50 with another text: %v, want BAD_USER_INPUT", err)
	}
	expectSilence(t, c, 300*time.Millisecond)

	// A pub whose keys live 1s: after that the key publishes anew.
	short := harness.StartPub(t, s.redis, "IDEMPOTENCY_TTL=1s")
	first, err := sendIdempotent(short, 10*time.Second, "ida", "once a second", "k-ttl")
	if err != nil {
		t.Fatal(err)
	}
	expectNotice(t, c, "once a second")
	var later batchResult
	eventually(t, 20*time.Second, "the key to expire", func() bool {
		later, err = sendIdempotent(short, 10*time.Second, "ida", "once a second", "k-ttl")
		if err != nil {
			t.Fatal(err)
		}
		return *later.ID != *first.ID
	})
	if n := expectNotice(t, c, "once a second"); n.ID != *later.ID {
		t.Fatalf("after expiry delivered %+v, answered %s", n, *later.ID)
	}
	expectSilence(t, c, 300*time.Millisecond)
}

// The default MAX_BODY_BYTES (1 MiB) takes a publishBatch of MAX_BATCH
// (1,000) notices of 900 bytes each, as the README says; a batch whose
// body is over it is answered 413 REQUEST_TOO_LARGE, and nothing of it is
// published.
func TestDefaultBodyLimitTakesAFullBatch(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "AUTH_MODE=jwt", "JWT_SECRET="+jwtSecret, "ALLOWED_ORIGINS="+frontend, "PUBLISHER_API_KEYS=acme-key-0123456789:acme")
	batch := func(textBytes int) []map[string]any {
		in := make([]map[string]any, 1000)
		for i := range in {
			text := fmt.Sprintf("%04d ", i) + strings.Repeat("x", textBytes-5)
			in[i] = map[string]any{"scope": "PERSON", "to": fmt.Sprint("u", i%7), "text": text}
		}
		return in
	}
	res, resp := publishBatch(t, pub, "acme-key-0123456789", batch(900))
	if resp.Status != http.StatusOK || len(resp.Errors) != 0 || len(res) != 1000 {
		t.Fatalf("1,000 notices of 900 bytes: HTTP %d, %+v, %d results", resp.Status, resp.Errors, len(res))
	}
	for i, got := range res {
		if got.Error != nil || got.ID == nil {
			t.Fatalf("notice %d: %+v", i, got)
		}
	}
	res, resp = publishBatch(t, pub, "acme-key-0123456789", batch(1100))
	if resp.Status != http.StatusRequestEntityTooLarge || len(resp.Errors) != 1 || resp.Errors[0].Extensions["code"] != "REQUEST_TOO_LARGE" || res != nil {
		t.Fatalf("1,000 notices of 1,100 bytes (over 1 MiB): HTTP %d, %+v, %d results", resp.Status, resp.Errors, len(res))
	}
	if got := metric(t, pub, "oshirase_pub_published_total"); got != 1000 {
		t.Fatalf("oshirase_pub_published_total = %d, want the first batch's 1,000 only", got)
	}
}
