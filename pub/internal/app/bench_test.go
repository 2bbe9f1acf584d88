package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/pub/internal/config"
	"github.com/oshirase/oshirase/pub/internal/publisher"
	"github.com/oshirase/oshirase/service/httpserve"
	"github.com/oshirase/oshirase/service/metrics"
)

// The publish API in process: pub's whole HTTP handler (credentials,
// body limit, GraphQL, publisher, bus) against a real redis-server, with
// HISTORY_SIZE at its default, as loadtest's S5 rows drive it over TCP.
// Each reports pub's time and allocations per notice beside the Redis CPU
// each notice cost (redis-µs/notice):
//
//	cd pub && go test -run '^$' -bench . -benchmem ./internal/app
//
// -cpuprofile shows where pub's own time goes without HTTP clients and
// subscribers on the same cores.

// benchHandler is pub's handler on a fresh Redis; it answers the Redis
// client too, for its CPU time.
func benchHandler(b *testing.B, env ...string) (http.Handler, *redis.Client) {
	b.Helper()
	srv := redistest.Start(b)
	vars := map[string]string{"REDIS_URL": srv.Addr, "AUTH_MODE": "none"}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		b.Fatal(err)
	}
	rdb := cfg.RedisClient("oshirase-pub-bench", 0)
	bs, err := bus.NewRedis(bus.Config{Client: rdb, Logger: quiet, HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL})
	if err != nil {
		b.Fatal(err)
	}
	authenticate, done, err := newAuthenticator(context.Background(), cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	pubr := publisher.New(publisher.Config{Bus: bs, MaxBatch: cfg.MaxBatch, MaxTextBytes: cfg.MaxTextBytes, Timeout: cfg.PublishTimeout})
	b.Cleanup(func() {
		pubr.Close()
		done()
		_ = bs.Close()
		_ = rdb.Close()
	})
	h := newHandler(cfg, httpserve.NewOrigins(cfg.AllowedOrigins), authenticate, pubr, bs, metrics.New(), quiet)
	return h, srv.Client()
}

// post runs one request through h; an error unless it answers 200
// without errors.
func post(h http.Handler, body []byte) error {
	r := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"error":{`)) || bytes.Contains(w.Body.Bytes(), []byte(`"errors"`)) {
		return fmt.Errorf("%d %.300s", w.Code, w.Body.String())
	}
	return nil
}

// BenchmarkPublishBatch: publishBatch, 1,000 personal notices a call to
// users of 100,000 (as S5's mutation-batch row), one call at a time, with
// the default history and without (HISTORY_SIZE=0, where pub and not Redis
// bounds the rate). pub-µs/notice is this process's CPU time: pub's
// handler and its Redis client, nothing else.
func BenchmarkPublishBatch(b *testing.B) {
	for _, history := range []string{"100", "0"} {
		b.Run("history="+history, func(b *testing.B) { benchPublishBatch(b, "HISTORY_SIZE", history) })
	}
}

func benchPublishBatch(b *testing.B, env ...string) {
	h, rdb := benchHandler(b, env...)
	defer rdb.Close()
	const batch = 1000
	type input struct {
		Scope string `json:"scope"`
		To    string `json:"to"`
		Text  string `json:"text"`
	}
	bodies := make([][]byte, 16)
	for i := range bodies {
		in := make([]input, batch)
		for j := range in {
			in[j] = input{Scope: "PERSON", To: "u" + strconv.Itoa((i*batch+j)%100000), Text: strings.Repeat("x", 60)}
		}
		bodies[i], _ = json.Marshal(map[string]any{
			"query":     `mutation($in: [PublishInput!]!) { publishBatch(inputs: $in) { receivedUsers error { code message } } }`,
			"variables": map[string]any{"in": in},
		})
	}
	if err := post(h, bodies[0]); err != nil { // loads the script
		b.Fatal(err)
	}
	cpu0, self0 := redistest.CPUSeconds(b, rdb), selfCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := post(h, bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/notice")
	b.ReportMetric((selfCPU()-self0).Seconds()*1e6/n, "pub-µs/notice")
	b.ReportMetric((redistest.CPUSeconds(b, rdb)-cpu0)*1e6/n, "redis-µs/notice")
}

// selfCPU is the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSendNotification: sendNotification, 32 calls at once (S5's
// mutation row), each to one of 1,000 users.
func BenchmarkSendNotification(b *testing.B) {
	h, rdb := benchHandler(b)
	defer rdb.Close()
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]any{
			"query":     `mutation($to: String!, $text: String!) { sendNotification(to: $to, text: $text) { receivedUsers } }`,
			"variables": map[string]any{"to": fmt.Sprint("u", i), "text": strings.Repeat("x", 60)},
		})
	}
	if err := post(h, bodies[0]); err != nil {
		b.Fatal(err)
	}
	cpu0, calls0, self0 := redistest.CPUSeconds(b, rdb), scriptCalls(b, rdb), selfCPU()
	b.ReportAllocs()
	b.SetParallelism(16) // 32 callers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := post(h, bodies[i%len(bodies)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric((selfCPU()-self0).Seconds()*1e6/float64(b.N), "pub-µs/notice")
	b.ReportMetric((redistest.CPUSeconds(b, rdb)-cpu0)*1e6/float64(b.N), "redis-µs/notice")
	b.ReportMetric(float64(b.N)/float64(scriptCalls(b, rdb)-calls0), "notices/script")
}

// scriptCalls is how many scripts Redis has run (EVALSHA and EVAL).
func scriptCalls(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if k == "cmdstat_evalsha" || k == "cmdstat_eval" {
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			c, _ := strconv.ParseInt(calls, 10, 64)
			n += c
		}
	}
	return n
}
