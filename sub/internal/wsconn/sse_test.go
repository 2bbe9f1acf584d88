package wsconn_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/oshirase/oshirase/sub/internal/wsconn"
)

func startSSE(t *testing.T, readLimit int64) (*testserver.TestServer, string) {
	t.Helper()
	srv := testserver.New()
	srv.AddTransport(wsconn.SSE{
		SSE:          transport.SSE{KeepAlivePingInterval: 50 * time.Millisecond},
		WriteTimeout: time.Second,
		ReadLimit:    readLimit,
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

func postSSE(t *testing.T, url, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// An idle stream gets keep-alive comments; results arrive as "next"
// events; the end of the operation as "complete".
func TestSSEStream(t *testing.T) {
	srv, url := startSSE(t, 1<<10)
	resp := postSSE(t, url, `{"query":"subscription { name }"}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := bufio.NewScanner(resp.Body)
	want := func(prefix string) {
		t.Helper()
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), prefix) {
				return
			}
		}
		t.Fatalf("stream ended before %q: %v", prefix, lines.Err())
	}
	want(": ping")
	go srv.SendNextSubscriptionMessage()
	want("event: next")
	want(`data: {"data":{"name":"test"}}`)
	go srv.SendCompleteSubscriptionMessage()
	want("event: complete")
}

func TestSSERequestLimit(t *testing.T) {
	_, url := startSSE(t, 1<<10)
	resp := postSSE(t, url, `{"query":"subscription { name }","variables":{"pad":"`+strings.Repeat("x", 2<<10)+`"}}`)
	if ct := resp.Header.Get("Content-Type"); ct == "text/event-stream" {
		t.Fatal("a request over the limit was streamed")
	}
}

// A stream closed by the server (CloseAll at shutdown) ends at once with
// its code and reason as a comment and without "complete", which would
// tell graphql-sse the subscription is over instead of to retry.
func TestSSECloseAllEndsWithoutComplete(t *testing.T) {
	im := wsconn.New(wsconn.Config{})
	srv := testserver.New()
	srv.AddTransport(im.SSE(wsconn.SSE{SSE: transport.SSE{}}))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	resp := postSSE(t, hs.URL, `{"query":"subscription { name }"}`)
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || lines.Text() != ":" { // the stream is open
		t.Fatalf("first line %q", lines.Text())
	}
	done := make(chan struct{})
	go func() { defer close(done); im.CloseAll(1001, "going away") }()
	var got []string
	for lines.Scan() {
		got = append(got, lines.Text())
	}
	<-done
	text := strings.Join(got, "\n")
	if strings.Contains(text, "complete") || !strings.Contains(text, ": closed 1001 going away") {
		t.Fatalf("stream ended with %q, want the close comment and no complete", text)
	}
}
