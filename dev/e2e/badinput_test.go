package e2e_test

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

const sendMutation = `mutation($to:String!,$text:String!){sendNotification(to:$to,text:$text){receivedUsers}}`

// 9. Bad input gets a clear GraphQL error; the servers and other clients
// carry on.
func TestBadInputToPub(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "MAX_TEXT_BYTES=64")
	for _, tc := range []struct {
		name, to, text, want string
	}{
		{"empty to", "", "hi", "empty"},
		{"empty text", "bob", "", "text is empty"},
		{"text over the limit", "bob", strings.Repeat("x", 65), "limit is 64"},
		{"name over the limit", strings.Repeat("n", 300), "hi", "limit is 256"},
		{"newline in name", "bob\nalice", "hi", "control character"},
		{"invisible character in name", "b\u200bob", "hi", "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := pub.Post("/query", sendMutation, map[string]any{"to": tc.to, "text": tc.text})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, tc.want) || resp.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Fatalf("got %+v, want one BAD_USER_INPUT error mentioning %q", resp.Errors, tc.want)
			}
		})
	}
	t.Run("malformed GraphQL", func(t *testing.T) {
		resp, err := pub.Post("/query", `mutation { sendNotification(to: "bob"`, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Errors) == 0 || resp.Status == http.StatusOK && resp.Data != nil && string(resp.Data) != "null" {
			t.Fatalf("status %d, errors %+v", resp.Status, resp.Errors)
		}
	})
	t.Run("unknown field", func(t *testing.T) {
		resp, err := pub.Post("/query", `mutation { sendNotification(to: "bob", text: "x") { nope } }`, nil)
		if err != nil || len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, "nope") {
			t.Fatalf("got %+v, %v", resp, err)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		resp, err := http.Post(pub.URL+"/query", "application/json", bytes.NewReader([]byte("{{{")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Fatalf("status %d, want 4xx", resp.StatusCode)
		}
	})
	if got, err := pub.Send("bob", "still works"); err != nil || got != 0 {
		t.Fatalf("after bad input: %d, %v", got, err)
	}
}

func TestBadInputToSub(t *testing.T) {
	s := startStack(t)
	c := connect(t, s.sub, gqlws.TransportWS)
	for _, tc := range []struct{ name, user, want string }{
		{"empty userName", "", "empty"},
		{"userName over the limit", strings.Repeat("u", 10000), "limit is 256"},
		{"control characters", "bob\x1b[2J", "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Subscribe(tc.name, tc.user); err != nil {
				t.Fatal(err)
			}
			got := untilDone(t, c, tc.name)
			if !strings.Contains(got, tc.want) || !strings.Contains(got, "BAD_USER_INPUT") {
				t.Fatalf("got %s, want an error mentioning %q", got, tc.want)
			}
		})
	}
	t.Run("malformed GraphQL", func(t *testing.T) {
		if err := c.Send(gqlws.Msg{ID: "bad", Type: "subscribe", Payload: []byte(`{"query":"subscription { onNotificationReceived("}`)}); err != nil {
			t.Fatal(err)
		}
		if got := untilDone(t, c, "bad"); !strings.Contains(got, "error ") {
			t.Fatalf("got %s; want an error message", got)
		}
	})
	// The same connection still works. (gqlgen may follow an error with a
	// complete for the same id; let that pass first.)
	for {
		if _, err := c.Next(300 * time.Millisecond); err != nil {
			break
		}
	}
	subscribe(t, c, "ok", "carol")
	s.pub.WaitReceivers("carol", 1)
	send(t, s.pub, "carol", "after the bad ones")
	expectNotice(t, c, "after the bad ones")
}

// Invalid configuration fails at start, naming every variable to fix.
func TestInvalidConfigurationFailsAtStart(t *testing.T) {
	pubBin, subBin := harness.Binaries(t)
	for _, tc := range []struct {
		bin  string
		env  []string
		want []string
	}{
		{pubBin, []string{"PORT=http", "MAX_TEXT_BYTES=lots"}, []string{"PORT", "MAX_TEXT_BYTES"}},
		{pubBin, []string{"REDIS_URL=redis//nope"}, []string{"REDIS_URL"}},
		{pubBin, []string{"MAX_TEXT_BYTES=8KiB", "MAX_BODY_BYTES=8KiB"}, []string{"MAX_BODY_BYTES", "MAX_TEXT_BYTES"}},
		{subBin, []string{"QUEUE_SIZE=0", "WRITE_TIMEOUT=5"}, []string{"QUEUE_SIZE", "WRITE_TIMEOUT"}},
		{subBin, []string{"LOG_LEVEL=loud"}, []string{"LOG_LEVEL", "debug, info, warn, error"}},
		{pubBin, []string{"HISTORY_SIZE=-1", "HISTORY_TTL=5ms"}, []string{"HISTORY_SIZE", "HISTORY_TTL", "at least 1s"}},
		{subBin, []string{"HISTORY_TTL=forever"}, []string{"HISTORY_TTL"}},
		{subBin, []string{"MAX_CONNECTIONS=-1", "CONNECT_RATE=fast", "TRUSTED_PROXIES=nginx", "MAX_CONNECTIONS_PER_USER=3"},
			[]string{"MAX_CONNECTIONS", "CONNECT_RATE", "TRUSTED_PROXIES", "MAX_CONNECTIONS_PER_USER", "AUTH_MODE=jwt"}},
		{pubBin, []string{"PUBLISH_RATE=-5", "PUBLISH_BURST=0"}, []string{"PUBLISH_RATE", "PUBLISH_BURST"}},
		{pubBin, []string{"MAX_QUERY_DEPTH=0", "MAX_QUERY_COMPLEXITY=lots"}, []string{"MAX_QUERY_DEPTH", "MAX_QUERY_COMPLEXITY"}},
		{subBin, []string{"MAX_QUERY_DEPTH=601", "MAX_QUERY_COMPLEXITY=-1"}, []string{"MAX_QUERY_DEPTH", "from 1 to 600", "MAX_QUERY_COMPLEXITY"}},
	} {
		cmd := exec.Command(tc.bin)
		cmd.Env = tc.env
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Fatalf("%s %v: exit %v, want 2\n%s", tc.bin, tc.env, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s %v: output does not mention %q:\n%s", tc.bin, tc.env, w, out)
			}
		}
	}
}

// untilDone reads the messages of subscription id until it completes or
// errors, and returns them as "type payload" lines.
func untilDone(t *testing.T, c *gqlws.Client, id string) string {
	t.Helper()
	var b strings.Builder
	for {
		m, err := c.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("subscription %q: %v (so far: %s)", id, err, b.String())
		}
		if m.ID != id {
			t.Fatalf("message for %q while waiting for %q: %+v", m.ID, id, m)
		}
		b.WriteString(m.Type + " " + string(m.Payload) + "\n")
		if m.Type == "complete" || m.Type == "error" {
			return b.String()
		}
	}
}
