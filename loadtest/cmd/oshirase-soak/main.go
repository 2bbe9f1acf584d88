// Command oshirase-soak runs redis-server, pub and sub (from bin/) and
// soaks sub for a while: thousands of WebSocket connections opening and
// closing every few seconds, steady publishing, and a few slow consumers
// that read too little and get cut off and come back. Every -sample it
// records sub's RSS, its goroutines (from /metrics) and Redis's key count
// (DBSIZE); at the end it judges whether they stayed flat (the last third
// of the run against the first) and exits 1 if one grew.
//
//	make soak                       # SOAK_DURATION=10m by default
//	SOAK_DURATION=2m make soak
//
// Everything it starts listens on 127.0.0.1 and is stopped on exit. One
// process holds the clients: -conns is capped at 15,000, under the
// 20,000-files limit (sub, a process of its own, holds the other ends).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/oshirase/oshirase/loadtest/soak"
	"github.com/oshirase/oshirase/loadtest/sysinfo"
)

func main() {
	log.SetFlags(log.Ltime)
	def := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			log.Fatalf("SOAK_DURATION=%q: want a duration of at least 30s, like 10m", v)
		}
		def = d
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the pub and sub binaries (make build)")
	flag.StringVar(&o.redisServer, "redis-server", "redis-server", "redis-server to run")
	flag.DurationVar(&o.duration, "duration", def, "how long the load runs (default SOAK_DURATION, else 10m)")
	flag.IntVar(&o.conns, "conns", 2000, "WebSocket connections kept churning (at most 15000)")
	flag.DurationVar(&o.minLife, "min-life", 2*time.Second, "shortest life of a connection")
	flag.DurationVar(&o.maxLife, "max-life", 6*time.Second, "longest life of a connection")
	flag.IntVar(&o.users, "users", 1000, "users the connections subscribe as, and notices go to")
	flag.Float64Var(&o.publishRate, "publish-rate", 50, "personal notices a second through pub")
	flag.IntVar(&o.slow, "slow", 2, "slow consumers (each its own user, flooded)")
	flag.Float64Var(&o.slowRate, "slow-rate", 50, "notices a second to each slow consumer (4 KB each)")
	flag.DurationVar(&o.sample, "sample", 10*time.Second, "sampling interval")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "keep the services' logs (their directory is named at the end)")
	flag.StringVar(&o.out, "out", "", "write the samples and verdicts here as JSON (and a .md beside it)")
	flag.Parse()
	if o.conns < 1 || o.conns > 15000 || o.minLife <= 0 || o.maxLife < o.minLife || o.users < 1 || o.sample <= 0 {
		log.Fatal("bad flags: -conns 1..15000, 0 < -min-life <= -max-life, -users >= 1, -sample > 0")
	}
	if _, err := sysinfo.RaiseNoFile(); err != nil {
		log.Printf("warning: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		log.Printf("soak: %v", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

type options struct {
	bin, redisServer, out string
	duration, minLife     time.Duration
	maxLife, sample       time.Duration
	conns, users, slow    int
	publishRate, slowRate float64
	keepLogs              bool
}

// result is what -out holds.
type result struct {
	Started   time.Time      `json:"started"`
	Options   map[string]any `json:"options"`
	Baseline  soak.Sample    `json:"baseline"`
	Samples   []soak.Sample  `json:"samples"`
	After     soak.Sample    `json:"after"`
	Verdicts  []soak.Verdict `json:"verdicts"`
	LoadAvg   string         `json:"loadAverage"`
	Processor int            `json:"cpus"`
}

func run(ctx context.Context, o options) (bool, error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return false, err
	}
	st, err := startStack(ctx, bin, o.redisServer)
	if st != nil {
		st.keepLogs = o.keepLogs
		defer st.stop()
	}
	if err != nil {
		return false, err
	}
	res := result{Started: time.Now().UTC(), LoadAvg: loadAvg(), Processor: cpus(), Options: map[string]any{
		"duration": o.duration.String(), "conns": o.conns, "life": fmt.Sprintf("%s–%s", o.minLife, o.maxLife),
		"users": o.users, "publishRate": o.publishRate, "slow": o.slow, "slowRate": o.slowRate, "sample": o.sample.String(),
	}}
	log.Printf("soak: %s, %d connections living %s–%s, %d users, %g notices/s, %d slow consumers at %g/s; load average %s",
		o.duration, o.conns, o.minLife, o.maxLife, o.users, o.publishRate, o.slow, o.slowRate, res.LoadAvg)

	ld := newLoad(st, o)
	// Every user's history exists before the load, so that Redis's key
	// count starts where it stays (a history and its meta per user; the
	// count hashes come and go with subscribers).
	if err := ld.seed(ctx); err != nil {
		return false, err
	}
	start := time.Now()
	res.Baseline = st.sample(ctx, ld, 0)
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	done := ld.run(loadCtx)
	tick := time.NewTicker(o.sample)
	defer tick.Stop()
sampling:
	for {
		select {
		case <-loadCtx.Done():
			break sampling
		case <-tick.C:
			s := st.sample(ctx, ld, time.Since(start))
			res.Samples = append(res.Samples, s)
			log.Printf("t=%s rss=%.1fMiB goroutines=%d keys=%d open=%d connects=%d failed=%d published=%d slow-closed=%d",
				s.At.Round(time.Second), float64(s.RSS)/(1<<20), s.Goroutines, s.RedisKeys, s.Open, s.Connects, s.Failures, s.Published, s.SlowClosed)
		}
	}
	stopLoad()
	<-done
	if ctx.Err() != nil {
		return false, errors.New("interrupted")
	}
	// Let sub see the last closes and drop their channels.
	time.Sleep(3 * time.Second)
	res.After = st.sample(ctx, ld, time.Since(start))
	log.Printf("clients: %d connects, %d failed, %d publishes (%d failed), slow consumers saw %d closes before their reload and read %d KiB",
		ld.connects.Load(), ld.failures.Load(), ld.published.Load(), ld.publishFailures.Load(), ld.slowCut.Load(), ld.slowRead.Load()>>10)

	res.Verdicts, err = soak.Judge(res.Samples)
	if err != nil {
		return false, err
	}
	table := soak.Table(res.Samples, res.Verdicts)
	fmt.Printf("\n%s\nbefore the load: RSS %.1f MiB, %d goroutines, %d Redis keys; after it (3 s later): RSS %.1f MiB, %d goroutines, %d Redis keys, %d connections open\n",
		table, float64(res.Baseline.RSS)/(1<<20), res.Baseline.Goroutines, res.Baseline.RedisKeys,
		float64(res.After.RSS)/(1<<20), res.After.Goroutines, res.After.RedisKeys, res.After.Open)
	if o.out != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.out, b, 0o644); err != nil {
			return false, err
		}
		md := fmt.Sprintf("soak run %s, %s, %d CPUs, load average at start %s\n\n%s", res.Started.Format(time.RFC3339), o.duration, res.Processor, res.LoadAvg, table)
		if err := os.WriteFile(o.out[:len(o.out)-len(filepath.Ext(o.out))]+".md", []byte(md), 0o644); err != nil {
			return false, err
		}
	}
	flat := true
	for _, v := range res.Verdicts {
		flat = flat && v.Flat
	}
	if flat {
		fmt.Println("soak: flat — RSS, goroutines and Redis keys did not grow")
	} else {
		fmt.Println("soak: NOT flat — see the table")
	}
	return flat, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) < 14 {
		return "?"
	}
	var a, b5, c float64
	fmt.Sscan(string(b), &a, &b5, &c)
	return fmt.Sprintf("%.2f %.2f %.2f", a, b5, c)
}
