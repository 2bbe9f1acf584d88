package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/loadtest/fleet"
	"github.com/oshirase/oshirase/loadtest/publish"
	"github.com/oshirase/oshirase/loadtest/report"
	"github.com/oshirase/oshirase/loadtest/scenario"
	"github.com/oshirase/oshirase/loadtest/sysinfo"
)

func runCmd(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var (
		peer       = fs.String("peer", "oshirase", "peer name in the report")
		wsURL      = fs.String("url", "ws://127.0.0.1:8081/graphql", "WebSocket endpoint")
		protoName  = fs.String("proto", "graphql-transport-ws", "graphql-transport-ws, graphql-ws or centrifugo")
		subs       = fs.Int("subs", 1000, "subscriptions")
		users      = fs.Int("users", 0, "distinct users (default: one per subscription); subs/users tabs each")
		perConn    = fs.Int("subs-per-conn", 1, "subscriptions multiplexed on one WebSocket")
		prefix     = fs.String("user-prefix", "u", "user names are PREFIX<n>")
		perWorker  = fs.Int("per-worker", 15000, "connections per worker process (stay under the 20k file limit)")
		srcIPs     = fs.Int("src-ips", 32, "loopback source addresses 127.0.0.2… to spread connections over (0: kernel's choice)")
		parallel   = fs.Int("parallel", 64, "concurrent handshakes per worker")
		jwtSecret  = fs.String("jwt-secret", "", "sign an HS256 token per connection with this secret")
		channelFmt = fs.String("channel-fmt", "personal:#%s", "Centrifugo channel of a user")
		serverPID  = fs.Int("server-pid", 0, "server process to measure (default: whoever listens on the URL's port)")
		pubPID     = fs.Int("pub-pid", 0, "S5: the publishing server's process (oshirase pub), whose CPU per notice is reported beside Redis's")
		serverPIDs = fs.String("server-pids", "", "comma-separated server processes whose RSS and CPU are summed (several sub instances behind a load balancer); overrides -server-pid")
		pubMode    = fs.String("publish", "redis", "mutation, mutation-idem (a fresh idempotency key per call), mutation-batch (publishBatch, -batch notices a call), bus (the publish script, from this process), bus-batch (the bus's PublishBatch, -batch notices a call, as publishBatch runs it), redis or centrifugo")
		pubURL     = fs.String("pub-url", "http://127.0.0.1:8080/query", "GraphQL endpoint for -publish mutation*")
		pubHeader  = fs.String("pub-header", "", "extra header for publish requests, 'Name: value'")
		redisURL   = fs.String("redis", "127.0.0.1:6379", "Redis for -publish redis and probes")
		clusterArg = fs.String("redis-cluster", "", "-publish bus: comma-separated seed nodes of a Redis Cluster to publish to instead of -redis (needs -probe publisher or none); Redis CPU is then summed over every node")
		codec      = fs.String("codec", "wire", "Redis contract: wire (oshirase, bare) or node")
		tenant     = fs.String("tenant", "default", "tenant of the wire channels")
		centAPI    = fs.String("centrifugo-api", "http://127.0.0.1:8000/api", "Centrifugo server API")
		centKey    = fs.String("centrifugo-key", "", "Centrifugo API key")
		pubLabel   = fs.String("publish-label", "", "S5: how the row is labelled (default: the -publish mode)")
		pubConc    = fs.Int("pub-conc", 8, "concurrent publish calls")
		batch      = fs.Int("batch", 64, "notices per Redis pipeline / Centrifugo batch / publishBatch call")
		probeMode  = fs.String("probe", "redis", "how to probe readiness: redis, publisher or none")
		phases     = fs.String("phases", "idle", "phases, see scenario.ParsePhases")
		p99Bound   = fs.Duration("p99-bound", 250*time.Millisecond, "S2: a rate is sustainable while p99 stays under this")
		readyWait  = fs.Duration("ready-timeout", 60*time.Second, "longest wait for all subscriptions to be live")
		out        = fs.String("out", "", "write this run's results (JSON) here")
		resume     = fs.Bool("resume", false, "select each notice's cursor and resume after the last one on a reconnect (storm)")
		histSize   = fs.Int("history-size", 100, "-publish bus: HISTORY_SIZE, as sub runs with")
		histTTL    = fs.Duration("history-ttl", 24*time.Hour, "-publish bus: HISTORY_TTL, as sub runs with")
		stormWait  = fs.Duration("storm-timeout", 2*time.Minute, "longest wait for a storm's subscriptions to catch up")
		stormProf  = fs.String("storm-profile", "", "a pprof CPU profile URL of the server to fetch as the storm starts")
		stormPOut  = fs.String("storm-profile-out", "storm.pprof", "where the storm's profile goes")
		stormPSecs = fs.Int("storm-profile-secs", 10, "seconds of the storm's profile")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	phaseList, err := scenario.ParsePhases(*phases)
	if err != nil {
		return err
	}
	var cluster []string
	if *clusterArg != "" {
		for _, a := range strings.Split(*clusterArg, ",") {
			cluster = append(cluster, strings.TrimSpace(a))
		}
		if !strings.HasPrefix(*pubMode, "bus") || *probeMode == "redis" {
			return fmt.Errorf("-redis-cluster needs -publish bus or bus-batch and -probe publisher or none (sub subscribes with SSUBSCRIBE there, which a plain PUBLISH does not reach)")
		}
	}
	for _, u := range append([]string{*wsURL, *pubURL, *centAPI, *redisURL, *stormProf}, cluster...) {
		if u == "" {
			continue
		}
		if err := loopbackOnly(u); err != nil {
			return err
		}
	}
	if *users <= 0 {
		*users = *subs
	}
	var extraPIDs []int
	if *serverPIDs != "" {
		var pids []int
		for _, f := range strings.Split(*serverPIDs, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || pid <= 0 {
				return fmt.Errorf("-server-pids: %q is not a process id", f)
			}
			pids = append(pids, pid)
		}
		*serverPID, extraPIDs = pids[0], pids[1:]
	}
	if *serverPID == 0 && *subs > 0 {
		if u, err := url.Parse(*wsURL); err == nil {
			if port, err := strconv.Atoi(u.Port()); err == nil {
				if pid, err := sysinfo.PIDByPort(port); err == nil {
					*serverPID = pid
				} else {
					log.Warn("server process not found; no memory figures", "err", err)
				}
			}
		}
	}
	header := http.Header{}
	if k, v, ok := strings.Cut(*pubHeader, ":"); ok {
		header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	var cdc publish.Codec = publish.WireCodec{Tenant: *tenant}
	if *codec == "node" {
		cdc = publish.NodeCodec{}
	}
	var rdb *publish.Redis
	if *pubMode == "redis" || *probeMode == "redis" {
		if rdb, err = publish.NewRedis(*redisURL, cdc, *batch, *pubConc+4); err != nil {
			return err
		}
		defer rdb.Close()
	}
	var pub publish.Publisher
	var info redis.UniversalClient // for Redis's CPU time
	if rdb != nil {
		info = rdb.Client()
	}
	switch *pubMode {
	case "redis":
		pub = rdb
	case "bus", "bus-batch":
		bp, err := publish.NewBus(*redisURL, cluster, *tenant, *histSize, *histTTL, *pubConc+4)
		if err != nil {
			return err
		}
		if *pubMode == "bus-batch" {
			bp.Batched(*batch)
		}
		pub, info = bp, bp.Client()
	case "mutation":
		pub = publish.NewMutation(*pubURL, header, *pubConc, false)
	case "mutation-idem":
		pub = publish.NewMutation(*pubURL, header, *pubConc, true)
	case "mutation-batch":
		pub = publish.NewBatchMutation(*pubURL, header, *pubConc, *batch)
	case "centrifugo":
		pub = publish.NewCentrifugo(*centAPI, *centKey, *channelFmt, *pubConc, *batch)
	default:
		return fmt.Errorf("unknown -publish %q", *pubMode)
	}
	defer pub.Close()
	var probe publish.Publisher
	switch *probeMode {
	case "redis":
		probe = rdb
	case "publisher":
		probe = pub
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := scenario.Config{
		Peer: *peer,
		Spec: fleet.ConnectSpec{
			Layout: fleet.Layout{Subs: *subs, Users: *users, SubsPerConn: max(*perConn, 1), UserPrefix: *prefix},
			URL:    *wsURL, Proto: *protoName, SrcIPs: *srcIPs, Parallel: *parallel,
			JWTSecret: *jwtSecret, ChannelFmt: *channelFmt, TimeoutSec: 15, Resume: *resume,
		},
		PerWorker: *perWorker, Exe: exe, ServerPID: *serverPID, ExtraPIDs: extraPIDs, PubPID: *pubPID,
		Pub: pub, PubConc: *pubConc, Probe: probe,
		ReadyTimeout: *readyWait, P99Bound: *p99Bound, Log: log,
	}
	if info != nil {
		cfg.RedisCPU = func() (float64, error) { return redisCPU(ctx, info) }
	}
	if *stormProf != "" {
		cfg.OnStorm = func() (wait func()) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := fetchTo(fmt.Sprintf("%s?seconds=%d", *stormProf, *stormPSecs), *stormPOut); err != nil {
					log.Warn("storm profile", "err", err)
				}
			}()
			return func() { <-done }
		}
	}
	r, err := scenario.New(cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	res := &report.Results{Generated: time.Now().UTC().Format(time.RFC3339), Facts: map[string]string{}}
	save := func() error {
		if *out == "" {
			return nil
		}
		return res.Save(*out)
	}
	s1, err := r.Connect(ctx, 0)
	if err != nil {
		return err
	}
	for _, ph := range phaseList {
		if ctx.Err() != nil {
			break
		}
		var runs []report.Run
		switch ph.Kind {
		case "idle":
			time.Sleep(ph.Settle)
			s1.RSSAfter = scenario.SumRSS(append([]int{*serverPID}, extraPIDs...))
			if *serverPID != 0 && s1.Subs > 0 {
				s1.MemPerSub = float64(s1.RSSAfter-s1.RSSBefore) / float64(s1.Subs)
				s1.MemPerConn = float64(s1.RSSAfter-s1.RSSBefore) / float64(max(s1.Conns, 1))
			}
			runs = []report.Run{s1}
			log.Info("idle", "peer", *peer, "subs", s1.Subs, "conns", s1.Conns, "mem_per_sub_KiB", s1.MemPerSub/1024, "subs_per_s", int(s1.ConnectRate))
		case "fixed":
			run, err := r.Fixed(ctx, "S3", ph.Rates[0], ph.Dur)
			if err != nil {
				return err
			}
			runs = []report.Run{run}
		case "sweep":
			runs, err = r.Sweep(ctx, ph.Rates, ph.Dur, ph.Hold)
			if err != nil {
				return err
			}
		case "broadcast", "company":
			run, err := r.Broadcast(ctx, ph.Count, ph.Kind == "company")
			if err != nil {
				return err
			}
			runs = []report.Run{run}
		case "storm":
			run, err := r.Storm(ctx, ph.Count, *stormWait)
			if err != nil {
				return err
			}
			runs = []report.Run{run}
		case "publish":
			run, err := r.PublishMax(ctx, *pubMode, ph.Dur)
			if err != nil {
				return err
			}
			if *pubLabel != "" {
				run.Label = *pubLabel
			}
			runs = []report.Run{run}
		}
		res.Runs = append(res.Runs, runs...)
		if err := save(); err != nil {
			return err
		}
	}
	return save()
}

// loopbackOnly refuses any target outside 127.0.0.0/8 (and ::1): this tool
// must never load anything but this machine.
func loopbackOnly(target string) error {
	host := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(target); err == nil {
		host = h
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address; this tool only loads 127.0.0.0/8", target)
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "loadtest/results/tmp", "directory of per-run JSON files, or one results.json to re-render")
	outDir := fs.String("out", "loadtest/results", "where results.json, results.md and plot.svg go")
	mode := fs.String("mode", "quick", "quick or full")
	machine := fs.String("machine", "", "machine description")
	var facts multiFlag
	fs.Var(&facts, "fact", "key=value to record (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var res *report.Results
	if st, err := os.Stat(*in); err == nil && !st.IsDir() {
		// re-render an earlier results.json with this build's tables
		if res, err = report.Load(*in); err != nil {
			return err
		}
		if res.Facts == nil {
			res.Facts = map[string]string{}
		}
	} else {
		if res, err = report.LoadDir(*in); err != nil {
			return err
		}
		res.Mode, res.Machine = *mode, *machine
		res.Generated = time.Now().UTC().Format(time.RFC3339)
	}
	for _, f := range facts {
		if k, v, ok := strings.Cut(f, "="); ok {
			res.Facts[k] = v
		}
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	if err := res.Save(filepath.Join(*outDir, "results.json")); err != nil {
		return err
	}
	md := res.Markdown()
	if err := os.WriteFile(filepath.Join(*outDir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*outDir, "plot.svg"), []byte(res.SVG()), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

var rpsLine = regexp.MustCompile(`: ([0-9.]+) requests per second`)

// redisBenchCmd runs redis-benchmark's PUBLISH test and records it as the
// S5 ceiling.
func redisBenchCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("redis-bench", flag.ContinueOnError)
	port := fs.Int("port", 6379, "Redis port on 127.0.0.1")
	n := fs.Int("n", 1000000, "requests")
	pipeline := fs.Int("P", 16, "pipeline depth")
	clients := fs.Int("c", 50, "clients")
	out := fs.String("out", "", "results JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(*port),
		"-n", strconv.Itoa(*n), "-c", strconv.Itoa(*clients), "-P", strconv.Itoa(*pipeline), "-q",
		"publish", "bench:redis-benchmark", "lt:0:0")
	raw, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-benchmark: %w: %s", err, raw)
	}
	// -q rewrites its progress line with \r; the last figure is the result.
	m := rpsLine.FindAllSubmatch(raw, -1)
	if m == nil {
		return fmt.Errorf("redis-benchmark: no rate in %q", raw)
	}
	rps, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	res := &report.Results{Runs: []report.Run{{Peer: "redis", Scenario: "S5",
		Label: fmt.Sprintf("redis-benchmark PUBLISH -P %d -c %d", *pipeline, *clients), SentRate: rps, Published: int64(*n),
		Note: "no subscribers; the broker's own ceiling"}}}
	fmt.Printf("redis-benchmark PUBLISH: %.0f/s\n", rps)
	if *out != "" {
		return res.Save(*out)
	}
	return nil
}
