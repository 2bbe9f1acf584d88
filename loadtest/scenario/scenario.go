// Package scenario runs the benchmark's phases against one peer: it opens
// the subscriptions through a fleet of worker processes, waits until every
// one is live, publishes, and turns what the workers counted into
// report.Runs.
package scenario

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/oshirase/oshirase/loadtest/fleet"
	"github.com/oshirase/oshirase/loadtest/hist"
	"github.com/oshirase/oshirase/loadtest/proto"
	"github.com/oshirase/oshirase/loadtest/publish"
	"github.com/oshirase/oshirase/loadtest/rate"
	"github.com/oshirase/oshirase/loadtest/report"
	"github.com/oshirase/oshirase/loadtest/sysinfo"
)

// Config is one peer's setup. Zero values get the defaults noted.
type Config struct {
	Peer      string
	Spec      fleet.ConnectSpec // layout, URL, protocol, dial settings
	PerWorker int               // connections per worker process; default 15000
	Exe       string            // binary to run workers with ("worker" mode)
	ServerPID int               // process whose RSS and CPU are measured; 0: none
	ExtraPIDs []int             // more of them (sub instances behind a load balancer): RSS and CPU summed
	PubPID    int               // S5: the publishing server (oshirase pub), whose CPU is measured; 0: none

	Pub     publish.Publisher // measured notices
	PubConc int               // concurrent publish calls; default 8
	Probe   publish.Publisher // readiness probes; nil: the subscribe reply is enough

	// RedisCPU answers Redis's CPU time so far (INFO cpu: used_cpu_sys +
	// used_cpu_user, seconds); nil: not measured.
	RedisCPU func() (float64, error)
	// OnStorm, if set, is called as the storm's reconnects start (to
	// profile the server); the storm calls what it returns before it ends.
	OnStorm func() (wait func())

	ReadyTimeout time.Duration // default 60 s
	P99Bound     time.Duration // sustainable if p99 stays under it; default 250 ms
	Log          *slog.Logger
}

// Runner holds the connections between phases.
type Runner struct {
	cfg      Config
	fl       *fleet.Fleet
	subs     int // live subscriptions
	conns    int
	Runs     []report.Run
	baseline int64 // server RSS before connecting
}

// New starts the worker processes (none when there are no subscriptions).
func New(cfg Config) (*Runner, error) {
	if cfg.PerWorker <= 0 {
		cfg.PerWorker = 15000
	}
	if cfg.PubConc <= 0 {
		cfg.PubConc = 8
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	if cfg.P99Bound <= 0 {
		cfg.P99Bound = 250 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Runner{cfg: cfg}
	if cfg.Spec.Subs > 0 {
		fl, err := fleet.Start(len(cfg.Spec.Split(cfg.PerWorker)), cfg.Exe, "worker")
		if err != nil {
			return nil, err
		}
		r.fl = fl
	}
	return r, nil
}

// Close ends the workers and their connections.
func (r *Runner) Close() {
	if r.fl != nil {
		r.fl.Close()
	}
}

func (r *Runner) rss() int64 {
	if r.cfg.ServerPID == 0 {
		return 0
	}
	return SumRSS(append([]int{r.cfg.ServerPID}, r.cfg.ExtraPIDs...))
}

// SumRSS is the resident memory of every process in pids (0s skipped).
func SumRSS(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		if pid != 0 {
			v, _ := sysinfo.RSS(pid)
			sum += v
		}
	}
	return sum
}

func (r *Runner) cpu() int64 {
	if r.cfg.ServerPID == 0 {
		return 0
	}
	var sum int64
	for _, pid := range append([]int{r.cfg.ServerPID}, r.cfg.ExtraPIDs...) {
		v, _ := sysinfo.CPUTicks(pid)
		sum += v
	}
	return sum
}

// Connect opens every subscription, waits until all are live, lets the
// server settle, and returns the S1 run (memory per idle subscription).
func (r *Runner) Connect(ctx context.Context, settle time.Duration) (report.Run, error) {
	l := r.cfg.Spec.Layout
	run := report.Run{Peer: r.cfg.Peer, Scenario: "S1", Label: fmt.Sprintf("idle %d", l.Subs), Proto: r.cfg.Spec.Proto, Users: l.Users}
	if r.fl == nil {
		return run, nil
	}
	r.baseline = r.rss()
	run.RSSBefore = r.baseline
	start := time.Now()
	parts := l.Split(r.cfg.PerWorker)
	cmds := make([]fleet.Command, len(parts))
	for i, p := range parts {
		s := r.cfg.Spec
		s.ConnFirst, s.ConnLast = p[0], p[1]
		cmds[i] = fleet.Command{Op: "connect", Connect: &s}
	}
	reps, err := r.fl.Each(cmds)
	if err != nil {
		return run, err
	}
	for _, rep := range reps {
		r.conns += rep.Conns
		r.subs += rep.Subs
		run.ConnectErrors += rep.ConnectErrs
		if rep.FirstError != "" && run.Note == "" {
			run.Note = "first connect error: " + rep.FirstError
		}
	}
	hand := time.Since(start)
	r.cfg.Log.Info("connected", "peer", r.cfg.Peer, "conns", r.conns, "subs", r.subs, "errors", run.ConnectErrors, "secs", hand.Seconds())
	if r.subs == 0 {
		return run, fmt.Errorf("scenario: no subscription connected (%s)", run.Note)
	}
	if err := r.waitReady(ctx); err != nil {
		run.Note = joinNote(run.Note, err.Error())
	}
	live := time.Since(start)
	run.Conns, run.Subs = r.conns, r.subs
	run.ConnectSecs = live.Seconds()
	run.ConnectRate = float64(r.subs) / live.Seconds()
	run.Note = joinNote(run.Note, fmt.Sprintf("handshakes %.1fs, all live %.1fs", hand.Seconds(), live.Seconds()))
	time.Sleep(settle)
	run.RSSAfter = r.rss()
	if r.cfg.ServerPID != 0 && r.subs > 0 {
		run.MemPerSub = float64(run.RSSAfter-run.RSSBefore) / float64(r.subs)
		run.MemPerConn = float64(run.RSSAfter-run.RSSBefore) / float64(max(r.conns, 1))
	}
	return run, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// waitReady publishes probes to every user one of whose subscriptions has
// not seen one yet, until none is left.
func (r *Runner) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(r.cfg.ReadyTimeout)
	for round := 0; ; round++ {
		reps, err := r.fl.All(fleet.Command{Op: "unready"})
		if err != nil {
			return err
		}
		seen := map[int]bool{}
		var users []int
		for _, rep := range reps {
			for _, u := range rep.Unready {
				if !seen[u] {
					seen[u] = true
					users = append(users, u)
				}
			}
		}
		if len(users) == 0 {
			return nil
		}
		if r.cfg.Probe == nil {
			return fmt.Errorf("%d users not subscribed and no probe publisher", len(users))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d users still not live after %v", len(users), r.cfg.ReadyTimeout)
		}
		if round > 0 {
			r.cfg.Log.Info("waiting for subscriptions", "peer", r.cfg.Peer, "users_not_live", len(users), "round", round)
		}
		l := r.cfg.Spec.Layout
		publish.Drive(ctx, r.cfg.Probe, rate.New(time.Now(), 0, int64(len(users))), r.cfg.PubConc,
			func(i int64) string { return l.User(users[i]) },
			func(i int64, now time.Time) string { return proto.ProbeText(now, i) })
		time.Sleep(time.Duration(min(300+100*round, 1500)) * time.Millisecond)
	}
}

// collect merges the workers' counters.
type tally struct {
	received, subErrors, disconnects, unknown int64
	first, last                               int64
	hist                                      hist.Hist
	err                                       string
}

func (r *Runner) stats() (*tally, error) {
	t := &tally{}
	if r.fl == nil {
		return t, nil
	}
	reps, err := r.fl.All(fleet.Command{Op: "stats"})
	if err != nil {
		return nil, err
	}
	for _, rep := range reps {
		t.received += rep.Received
		t.subErrors += rep.SubErrors
		t.disconnects += rep.Disconnects
		t.unknown += rep.Unknown
		if rep.FirstRecv > 0 && (t.first == 0 || rep.FirstRecv < t.first) {
			t.first = rep.FirstRecv
		}
		t.last = max(t.last, rep.LastRecv)
		if rep.Hist != nil {
			t.hist.MergeSnapshot(*rep.Hist)
		}
		if rep.FirstError != "" && t.err == "" {
			t.err = rep.FirstError
		}
	}
	return t, nil
}

func (r *Runner) reset() error {
	if r.fl == nil {
		return nil
	}
	_, err := r.fl.All(fleet.Command{Op: "reset"})
	return err
}

// drain waits until want deliveries arrived or none came for quiet.
func (r *Runner) drain(want int64, quiet, limit time.Duration) (*tally, error) {
	end := time.Now().Add(limit)
	var last int64 = -1
	lastChange := time.Now()
	for {
		t, err := r.stats()
		if err != nil {
			return nil, err
		}
		if t.received >= want || time.Now().After(end) || r.fl == nil {
			return t, nil
		}
		if t.received != last {
			last, lastChange = t.received, time.Now()
		} else if time.Since(lastChange) > quiet {
			return t, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tabs is how many subscriptions read each user's notices.
func (r *Runner) tabs() int64 {
	l := r.cfg.Spec.Layout
	return int64(max(l.Subs/max(l.Users, 1), 1))
}

// Fixed publishes personal notices at perSec for dur and measures them.
func (r *Runner) Fixed(ctx context.Context, scenario string, perSec float64, dur time.Duration) (report.Run, error) {
	l := r.cfg.Spec.Layout
	run := report.Run{Peer: r.cfg.Peer, Scenario: scenario, Label: fmt.Sprintf("%.0f/s for %v", perSec, dur),
		Proto: r.cfg.Spec.Proto, Subs: r.subs, Conns: r.conns, Users: l.Users, OfferedRate: perSec}
	if err := r.reset(); err != nil {
		return run, err
	}
	cpu0 := r.cpu()
	pctx, cancel := context.WithTimeout(ctx, dur+2*time.Second)
	defer cancel()
	limit := int64(perSec * dur.Seconds())
	st := publish.Drive(pctx, r.cfg.Pub, rate.New(time.Now(), perSec, limit), r.cfg.PubConc,
		func(i int64) string { return l.User(int(i % int64(max(l.Users, 1)))) },
		func(i int64, now time.Time) string { return proto.Text(now, i) })
	expected := st.Sent * r.tabs()
	t, err := r.drain(expected, 2*time.Second, 20*time.Second)
	if err != nil {
		return run, err
	}
	cpu1 := r.cpu()
	r.fill(&run, st, t, expected)
	if span := time.Duration(t.last - st.Start.UnixNano()); span > 0 {
		run.DeliveriesPerSec = float64(t.received) / span.Seconds()
		run.ServerCPU = float64(cpu1-cpu0) / 100 / span.Seconds()
	}
	lostOK := run.Drops <= expected/1000
	run.Sustainable = lostOK && run.SentRate >= 0.95*perSec && time.Duration(run.P99*1e6) < r.cfg.P99Bound && t.disconnects == 0
	r.cfg.Log.Info("phase", "peer", r.cfg.Peer, "scenario", scenario, "rate", perSec, "sent/s", int(run.SentRate),
		"delivered", t.received, "lost", run.Drops, "p50", run.P50, "p99", run.P99, "ok", run.Sustainable)
	return run, nil
}

func (r *Runner) fill(run *report.Run, st *publish.Stats, t *tally, expected int64) {
	run.Published = st.Sent
	run.SentRate = st.Rate()
	run.Expected = expected
	run.Delivered = t.received
	run.Drops = max(expected-t.received, 0)
	run.Errors = st.Failed + t.subErrors + t.unknown
	run.Disconnects = t.disconnects
	run.SetLatency(&t.hist)
	var notes []string
	if st.FirstErr != "" {
		notes = append(notes, "publish: "+st.FirstErr)
	}
	if t.err != "" {
		notes = append(notes, t.err)
	}
	if t.received > expected {
		notes = append(notes, fmt.Sprintf("%d more deliveries than expected (duplicates)", t.received-expected))
	}
	for _, n := range notes {
		run.Note = joinNote(run.Note, n)
	}
}

// Sweep runs Fixed at rising rates while they are sustainable, then, if
// final > 0, finds the highest rate that holds for final: it holds the
// highest sustainable step, and when that does not hold, the steps below
// it in turn (at most maxHolds tries).
func (r *Runner) Sweep(ctx context.Context, rates []float64, step, final time.Duration) ([]report.Run, error) {
	var out []report.Run
	var sustained []float64 // the steps that were sustainable, rising
	for _, pr := range rates {
		// A rate gets a second try: on a shared machine one stall of
		// another process is enough to spoil a short step.
		var run report.Run
		for try := 1; try <= 2; try++ {
			var err error
			if run, err = r.Fixed(ctx, "S2", pr, step); err != nil {
				return out, err
			}
			run.Label = fmt.Sprintf("step %.0f/s, %v", pr, step)
			if try == 2 {
				run.Label += " (2nd try)"
			}
			out = append(out, run)
			if run.Sustainable {
				break
			}
		}
		if !run.Sustainable {
			break
		}
		sustained = append(sustained, pr)
	}
	for i := len(sustained) - 1; final > 0 && i >= max(len(sustained)-maxHolds, 0); i-- {
		run, err := r.Fixed(ctx, "S2", sustained[i], final)
		if err != nil {
			return out, err
		}
		run.Label = fmt.Sprintf("held %.0f/s for %v", sustained[i], final)
		out = append(out, run)
		if run.Sustainable {
			break
		}
	}
	return out, nil
}

// maxHolds bounds the holds of a sweep: a peer that holds none of its
// three highest steps is reported as holding none.
const maxHolds = 3

// Broadcast sends count single notices to user 0 (every subscription when
// the layout has one user), or with company to the company channel that
// every subscription reads, and measures the time to the last delivery.
func (r *Runner) Broadcast(ctx context.Context, count int, company bool) (report.Run, error) {
	l := r.cfg.Spec.Layout
	run := report.Run{Peer: r.cfg.Peer, Scenario: "S4", Label: fmt.Sprintf("%d notices to %d tabs", count, r.subs),
		Proto: r.cfg.Spec.Proto, Subs: r.subs, Conns: r.conns, Users: l.Users}
	target, perNotice := l.User(0), r.tabs()
	if company {
		target, perNotice = publish.Company, int64(r.subs)
		run.Label = fmt.Sprintf("%d company-wide notices to %d users, %d subscriptions", count, l.Users, r.subs)
	}
	var all hist.Hist
	var toAll []float64
	var delivered, lost int64
	cpu0 := r.cpu()
	var busy time.Duration
	for i := 0; i < count; i++ {
		if err := r.reset(); err != nil {
			return run, err
		}
		start := time.Now()
		st := publish.Drive(ctx, r.cfg.Pub, rate.New(time.Now(), 0, 1), 1,
			func(int64) string { return target },
			func(i int64, now time.Time) string { return proto.Text(now, i) })
		want := st.Sent * perNotice
		t, err := r.drain(want, 2*time.Second, 20*time.Second)
		if err != nil {
			return run, err
		}
		busy += time.Since(start)
		all.Merge(&t.hist)
		delivered += t.received
		lost += max(want-t.received, 0)
		toAll = append(toAll, float64(t.hist.Max())/1e6)
		r.fill(&run, st, t, want)
		time.Sleep(200 * time.Millisecond)
	}
	sort.Float64s(toAll)
	run.SentRate, run.Published = 0, int64(count)
	run.SetLatency(&all)
	run.ToAll = toAll[len(toAll)/2]
	run.Delivered, run.Drops, run.Expected = delivered, lost, delivered+lost
	if run.ToAll > 0 {
		run.DeliveriesPerSec = float64(r.subs) / (run.ToAll / 1000)
	}
	run.ServerCPU = float64(r.cpu()-cpu0) / 100 / busy.Seconds()
	run.Note = joinNote(run.Note, fmt.Sprintf("time to all per notice, ms: %v", roundAll(toAll)))
	r.cfg.Log.Info("phase", "peer", r.cfg.Peer, "scenario", "S4", "tabs", r.subs, "to_all_ms", toAll)
	return run, nil
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(int(x*10)) / 10
	}
	return out
}

// PublishMax sends as fast as conc callers can for dur: the publish API's
// own ceiling (S5).
func (r *Runner) PublishMax(ctx context.Context, how string, dur time.Duration) (report.Run, error) {
	l := r.cfg.Spec.Layout
	run := report.Run{Peer: r.cfg.Peer, Scenario: "S5", Label: how, Subs: r.subs, Conns: r.conns, Users: l.Users}
	if err := r.reset(); err != nil {
		return run, err
	}
	redis0, rerr := r.redisCPU()
	pub0, perr := sysinfo.CPUTicks(r.cfg.PubPID)
	cpu0, t0 := r.cpu(), time.Now()
	pctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	st := publish.Drive(pctx, r.cfg.Pub, rate.New(time.Now(), 0, 0), r.cfg.PubConc,
		func(i int64) string { return l.User(int(i % int64(max(l.Users, 1)))) },
		func(i int64, now time.Time) string { return proto.Text(now, i) })
	run.Published, run.SentRate, run.Errors = st.Sent, st.Rate(), st.Failed
	secs := max(time.Since(t0).Seconds(), 1e-3)
	if redis1, err := r.redisCPU(); err == nil && rerr == nil && r.cfg.RedisCPU != nil {
		// Redis's CPU per notice: what a shard spends to count, record and
		// send one (with the subscribers listening at the time)
		run.RedisCPUSecs = redis1 - redis0
		run.RedisCPU = run.RedisCPUSecs / secs
	}
	if r.cfg.ServerPID != 0 {
		run.ServerCPU = float64(r.cpu()-cpu0) / 100 / secs
	}
	if pub1, err := sysinfo.CPUTicks(r.cfg.PubPID); r.cfg.PubPID != 0 && err == nil && perr == nil {
		run.PubCPUSecs = float64(pub1-pub0) / 100
	}
	run.P50 = float64(st.CallLat.Quantile(0.5)) / 1e6
	run.P99 = float64(st.CallLat.Quantile(0.99)) / 1e6
	run.Max = float64(st.CallLat.Max()) / 1e6
	if st.FirstErr != "" {
		run.Note = "publish: " + st.FirstErr
	}
	if st.Received > 0 {
		run.Note = joinNote(run.Note, fmt.Sprintf("receivers reported %d live subscriptions in all", st.Received))
	}
	if r.fl != nil {
		expected := st.Sent * r.tabs()
		t, err := r.drain(expected, time.Second, 10*time.Second)
		if err == nil {
			run.Delivered, run.Expected = t.received, expected
			run.Drops = max(expected-t.received, 0)
		}
	}
	r.cfg.Log.Info("phase", "peer", r.cfg.Peer, "scenario", "S5", "how", how, "publishes/s", int(run.SentRate), "errors", run.Errors, "redis_cpu_cores", run.RedisCPU)
	return run, nil
}
