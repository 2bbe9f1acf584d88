package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/client"
	"github.com/oshirase/oshirase/client/example"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// historyTexts lists, from sub's recent list, how often each text was
// published to user (every publish is recorded, subscribed or not).
func historyTexts(t *testing.T, sub *harness.Service, user, token string) map[string]int {
	t.Helper()
	r, err := sub.Post("/graphql", `query($u:String!){notifications(userName:$u,first:100){edges{node{text}}}}`,
		map[string]any{"u": user}, "Authorization", "Bearer "+token)
	if err != nil || len(r.Errors) > 0 {
		t.Fatalf("notifications(%s): %+v, %v", user, r, err)
	}
	var d struct {
		Notifications struct {
			Edges []struct{ Node struct{ Text string } }
		}
	}
	if err := json.Unmarshal(r.Data, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range d.Notifications.Edges {
		out[e.Node.Text]++
	}
	return out
}

// expectNoticesAnyOrder reads one notice per text, in any order: notices
// of different channels (person, store, company) are not ordered.
func expectNoticesAnyOrder(t *testing.T, c *gqlws.Client, texts ...string) {
	t.Helper()
	want := map[string]int{}
	for _, text := range texts {
		want[text]++
	}
	for range texts {
		n, _, err := c.NextNotification(10 * time.Second)
		if err != nil || want[n.Text] == 0 {
			t.Fatalf("got %+v, %v; want one of %v", n, err, want)
		}
		want[n.Text]--
	}
}

// The README's Go client example against the binaries: each notice
// delivered once to its audience, a second run delivers nothing; then a
// run while Redis is down and restarted, and a run whose first attempt
// times out on a frozen Redis, each ending in exactly one publish of every
// notice.
func TestGoClientExample(t *testing.T) {
	s := jwtStack(t)
	const key = "acme-key-0123456789"
	carolToken, daveToken := userToken(t, "carol", "acme", "s9"), userToken(t, "dave", "acme", "s1")
	carol := connectAs(t, s.sub, gqlws.TransportWS, carolToken)
	dave := connectAs(t, s.sub, gqlws.TransportWS, daveToken)
	subscribe(t, carol, "1", "carol")
	subscribe(t, dave, "1", "dave")
	waitReceiversAs(t, s.pub, key, map[string]any{"scope": "COMPANY"}, 2)

	c := example.NewClient(s.pub.URL+"/query", key)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		res, err := example.OrderShipped(ctx, c, "7", "carol", "s1")
		if err != nil || res.ReceivedUsers != 1 || res.ID == "" {
			t.Fatalf("OrderShipped: %+v, %v", res, err)
		}
	}
	expectNoticesAnyOrder(t, carol, "Your order 7 has shipped", "Another order shipped")
	expectNoticesAnyOrder(t, dave, "Order 7 left the warehouse", "Another order shipped")
	expectSilence(t, carol, 300*time.Millisecond)
	expectSilence(t, dave, 10*time.Millisecond)

	// Redis down, then back (empty): the client retries UNAVAILABLE until
	// pub can publish again; each notice is published once.
	s.redis.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := example.OrderShipped(ctx, c, "8", "carol", "s1")
		done <- err
	}()
	time.Sleep(time.Second) // a few attempts answered UNAVAILABLE
	s.redis.Start()
	if err := <-done; err != nil {
		t.Fatalf("OrderShipped across a Redis restart: %v\npub log:\n%s", err, s.pub.Log())
	}
	carolGot, daveGot := historyTexts(t, s.sub, "carol", carolToken), historyTexts(t, s.sub, "dave", daveToken)
	if carolGot["Your order 8 has shipped"] != 1 || carolGot["Another order shipped"] != 1 || daveGot["Order 8 left the warehouse"] != 1 {
		t.Fatalf("after a Redis restart, published to carol %v, to dave %v; want each notice once", carolGot, daveGot)
	}

	// The first attempt times out on a frozen Redis; pub's publish lands
	// when Redis thaws, and the retry answers it instead of publishing again.
	waitReceiversAs(t, s.pub, key, map[string]any{"scope": "PERSON", "to": "carol"}, 1) // sub is back on the restarted Redis
	// What reached carol live of order 8 depends on when sub was back:
	// at most one copy of each.
	live := map[string]int{}
	for {
		n, _, err := carol.NextNotification(300 * time.Millisecond)
		if err != nil {
			break
		}
		if live[n.Text]++; live[n.Text] > 1 || !strings.Contains(n.Text, "order") {
			t.Fatalf("carol got %q live after the restart (so far %v)", n.Text, live)
		}
	}
	impatient := client.New(client.Config{URL: s.pub.URL + "/query", APIKey: key, AttemptTimeout: 300 * time.Millisecond})
	s.redis.Freeze()
	go func() {
		_, err := impatient.SendNotification(ctx, "carol", "frozen, then thawed", client.WithIdempotencyKey("thaw-1"))
		done <- err
	}()
	time.Sleep(700 * time.Millisecond) // two attempts timed out
	s.redis.Thaw()
	if err := <-done; err != nil {
		t.Fatalf("SendNotification across a frozen Redis: %v", err)
	}
	expectNotice(t, carol, "frozen, then thawed")
	expectSilence(t, carol, 300*time.Millisecond)
	if got := historyTexts(t, s.sub, "carol", carolToken)["frozen, then thawed"]; got != 1 {
		t.Fatalf("published %d times, want once", got)
	}

	// Refusals are not retried, and say why.
	_, err := c.Publish(ctx, client.Notice{Scope: client.Person, To: "bob", Tenant: "globex", Text: "x"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeForbidden {
		t.Fatalf("another tenant: %v, want FORBIDDEN", err)
	}
	res, err := c.PublishBatch(ctx, []client.Notice{{Scope: client.Person, To: "carol", Text: "batch ok"}, {Scope: client.Public, Text: "x"}})
	if err != nil || res[0].Err != nil || res[0].ReceivedUsers != 1 || !errors.As(res[1].Err, &e) || e.Code != client.CodeForbidden {
		t.Fatalf("a batch with one refused notice: %+v, %v", res, err)
	}
	expectNotice(t, carol, "batch ok")
}

// oshirase-publish, the CLI on the client, against the binaries.
func TestPublishCLI(t *testing.T) {
	s := jwtStack(t)
	bin := filepath.Join(t.TempDir(), "oshirase-publish")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/oshirase/oshirase/client/cmd/oshirase-publish").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	erin := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "erin", "acme", "s3"))
	subscribe(t, erin, "1", "erin")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "erin"}, 1)
	cli := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, append([]string{"--url", s.pub.URL + "/query"}, args...)...)
		cmd.Env = append(cmd.Environ(), "OSHIRASE_API_KEY=acme-key-0123456789")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	out, errOut, code := cli("--to", "erin", "--text", "hi")
	var res struct{ ReceivedUsers int }
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.ReceivedUsers != 1 {
		t.Fatalf("--to erin: exit %d, %q, %q", code, out, errOut)
	}
	expectNotice(t, erin, "hi")
	if out, errOut, code = cli("--store", "s3", "--text", "store news"); code != 0 || !strings.Contains(out, `"receivedUsers":1`) {
		t.Fatalf("--store s3: exit %d, %q, %q", code, out, errOut)
	}
	expectNotice(t, erin, "store news")
	if out, errOut, code = cli("--company", "--text", "company news"); code != 0 || !strings.Contains(out, `"receivedUsers":1`) {
		t.Fatalf("--company: exit %d, %q, %q", code, out, errOut)
	}
	expectNotice(t, erin, "company news")
	// The same --idempotency-key again: nothing published, the first
	// answer (same id) printed; another text with it is refused.
	first, errOut, code := cli("--to", "erin", "--text", "once", "--idempotency-key", "cli-1")
	if code != 0 {
		t.Fatalf("--idempotency-key: exit %d, %q", code, errOut)
	}
	expectNotice(t, erin, "once")
	if again, errOut, code := cli("--to", "erin", "--text", "once", "--idempotency-key", "cli-1"); code != 0 || again != first {
		t.Fatalf("the same --idempotency-key again: exit %d, %q (first %q), %q", code, again, first, errOut)
	}
	if _, errOut, code = cli("--to", "erin", "--text", "other", "--idempotency-key", "cli-1"); code != 1 || !strings.Contains(errOut, "BAD_USER_INPUT") {
		t.Fatalf("the key with another text: exit %d, %q", code, errOut)
	}
	if _, errOut, code = cli("--public", "--text", "x"); code != 1 || !strings.Contains(errOut, "FORBIDDEN") {
		t.Fatalf("--public with a tenant key: exit %d, %q", code, errOut)
	}
	if _, errOut, code = cli("--to", "erin", "--company", "--text", "x"); code != 2 {
		t.Fatalf("two audiences: exit %d, %q", code, errOut)
	}
	expectSilence(t, erin, 200*time.Millisecond)
}

// The Go client with a publisher token instead of an API key: Token is
// asked for the credential before each request, and a token without the
// publisher role is refused at once with FORBIDDEN, not retried.
func TestGoClientWithAPublisherToken(t *testing.T) {
	s := jwtStack(t)
	frank := connectAs(t, s.sub, gqlws.TransportWS, userToken(t, "frank", "acme", ""))
	subscribe(t, frank, "1", "frank")
	waitReceiversAs(t, s.pub, "acme-key-0123456789", map[string]any{"scope": "PERSON", "to": "frank"}, 1)
	drain(frank)
	publisher := hmacKey.Sign(t, map[string]any{"sub": "billing", "tenant": "acme", "roles": []string{"publisher"}, "exp": time.Now().Add(time.Hour).Unix()})
	asked := 0
	c := client.New(client.Config{URL: s.pub.URL + "/query", Token: func(context.Context) (string, error) {
		asked++
		return publisher, nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 2 {
		res, err := c.Publish(ctx, client.Notice{Scope: client.Person, To: "frank", Text: fmt.Sprint("by token ", i)})
		if err != nil || res.ReceivedUsers != 1 {
			t.Fatalf("Publish with a publisher token: %+v, %v", res, err)
		}
		expectNotice(t, frank, fmt.Sprint("by token ", i))
	}
	if asked != 2 {
		t.Fatalf("Token asked %d times for 2 publishes, want 2", asked)
	}
	user := userToken(t, "frank", "acme", "")
	c = client.New(client.Config{URL: s.pub.URL + "/query", Token: func(context.Context) (string, error) { return user, nil }})
	_, err := c.Publish(ctx, client.Notice{Scope: client.Person, To: "frank", Text: "by a user"})
	var e *client.Error
	if !errors.As(err, &e) || e.Code != "FORBIDDEN" {
		t.Fatalf("Publish with a user's token: %v, want a *client.Error FORBIDDEN", err)
	}
	expectSilence(t, frank, 200*time.Millisecond)
}
