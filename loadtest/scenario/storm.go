package scenario

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/oshirase/oshirase/loadtest/fleet"
	"github.com/oshirase/oshirase/loadtest/proto"
	"github.com/oshirase/oshirase/loadtest/publish"
	"github.com/oshirase/oshirase/loadtest/report"
)

// Storm is the reconnect storm (S6): every subscription, connected with
// its cursor selected (Spec.Resume) and live, is disconnected; behind
// notices per user are published into the history meanwhile (Pub must
// record history: publish.Bus); then every subscription reconnects at
// once, resuming after its last cursor. It measures the time from the
// first reconnect until every subscription has received its behind
// notices, and the CPU Redis (RedisCPU) and the server used meanwhile.
// Missing notices, duplicates and refused resumes are counted.
func (r *Runner) Storm(ctx context.Context, behind int, timeout time.Duration) (report.Run, error) {
	l := r.cfg.Spec.Layout
	run := report.Run{Peer: r.cfg.Peer, Scenario: "S6", Proto: r.cfg.Spec.Proto, Subs: r.subs, Conns: r.conns, Users: l.Users,
		Label: fmt.Sprintf("reconnect storm: %d subscriptions, %d notices behind", r.subs, behind)}
	if r.fl == nil || !r.cfg.Spec.Resume {
		return run, fmt.Errorf("scenario: the storm needs resuming subscriptions (-resume)")
	}
	reps, err := r.fl.All(fleet.Command{Op: "disconnect"})
	if err != nil {
		return run, err
	}
	cursors := 0
	for _, rep := range reps {
		cursors += rep.Cursors
	}
	if cursors != r.subs {
		return run, fmt.Errorf("scenario: only %d of %d subscriptions hold a cursor", cursors, r.subs)
	}
	if err := r.reset(); err != nil {
		return run, err
	}

	// behind notices to every user, into the history, while all are away.
	start := time.Now()
	var sent, failed int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := int64(behind) * int64(l.Users)
	per := (total + int64(r.cfg.PubConc) - 1) / int64(r.cfg.PubConc)
	for g := int64(0); g < int64(r.cfg.PubConc); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * per; i < min((g+1)*per, total) && ctx.Err() == nil; i++ {
				n := publish.Notice{User: l.User(int(i % int64(l.Users))), Text: proto.Text(time.Now(), i)}
				_, bad, err := r.cfg.Pub.Publish(ctx, []publish.Notice{n})
				mu.Lock()
				sent += int64(1 - bad)
				failed += int64(bad)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.Published = sent
	r.cfg.Log.Info("storm: published while away", "notices", sent, "failed", failed, "secs", time.Since(start).Seconds())
	if failed > 0 {
		return run, fmt.Errorf("scenario: %d publishes failed: %v", failed, firstErr)
	}

	// Everyone back at once.
	redis0, err := r.redisCPU()
	if err != nil {
		return run, err
	}
	cpu0 := r.cpu()
	t0 := time.Now()
	if r.cfg.OnStorm != nil {
		defer r.cfg.OnStorm()()
	}
	parts := l.Split(r.cfg.PerWorker)
	cmds := make([]fleet.Command, len(parts))
	for i, p := range parts {
		s := r.cfg.Spec
		s.ConnFirst, s.ConnLast, s.Expect = p[0], p[1], behind
		cmds[i] = fleet.Command{Op: "reconnect", Connect: &s}
	}
	reps, err = r.fl.Each(cmds)
	if err != nil {
		return run, err
	}
	for _, rep := range reps {
		run.ConnectErrors += rep.ConnectErrs
		if rep.FirstError != "" {
			run.Note = joinNote(run.Note, "first reconnect error: "+rep.FirstError)
		}
	}
	run.ConnectSecs = time.Since(t0).Seconds()

	var caught, last, extra, retries int64
	var t *tally
	deadline := t0.Add(timeout)
	for {
		reps, err := r.fl.All(fleet.Command{Op: "stats"})
		if err != nil {
			return run, err
		}
		caught, last, extra, retries = 0, 0, 0, 0
		for _, rep := range reps {
			caught += rep.Caught
			last = max(last, rep.CaughtLast)
			extra += rep.Extra
			retries += rep.Retries
		}
		if caught >= int64(r.subs) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	wall := time.Since(t0)
	redis1, err := r.redisCPU()
	if err != nil {
		return run, err
	}
	cpu1 := r.cpu()
	if caught >= int64(r.subs) {
		wall = time.Duration(last - t0.UnixNano())
		run.ToAll = float64(wall) / 1e6
	} else {
		run.Note = joinNote(run.Note, fmt.Sprintf("only %d of %d subscriptions caught up within %v (the last of them after %.1fs)",
			caught, r.subs, timeout, float64(last-t0.UnixNano())/1e9))
	}
	if retries > 0 {
		run.Note = joinNote(run.Note, fmt.Sprintf("%d reconnects of connections the server closed meanwhile", retries))
	}
	// Stragglers and duplicates: a moment of quiet, then the counts.
	time.Sleep(time.Second)
	if t, err = r.stats(); err != nil {
		return run, err
	}
	reps, err = r.fl.All(fleet.Command{Op: "stats"})
	if err != nil {
		return run, err
	}
	extra = 0
	for _, rep := range reps {
		extra += rep.Extra
	}
	run.Expected = int64(r.subs) * int64(behind)
	run.Delivered = t.received
	run.Drops = max(run.Expected-t.received, 0)
	run.Errors = t.subErrors + t.unknown
	run.Disconnects = t.disconnects
	if t.err != "" {
		run.Note = joinNote(run.Note, t.err)
	}
	if extra > 0 {
		run.Note = joinNote(run.Note, fmt.Sprintf("%d deliveries past the %d expected (duplicates)", extra, behind))
	}
	secs := time.Since(t0).Seconds() - 1 // the CPU was read before the quiet second
	if caught >= int64(r.subs) {
		secs = float64(wall) / 1e9
	}
	run.ServerCPU = float64(cpu1-cpu0) / 100 / max(secs, 1e-3)
	run.RedisCPU = (redis1 - redis0) / max(secs, 1e-3)
	run.RedisCPUSecs = redis1 - redis0
	r.cfg.Log.Info("storm", "peer", r.cfg.Peer, "subs", r.subs, "behind", behind, "handshakes_s", run.ConnectSecs,
		"all_caught_up_ms", run.ToAll, "reconnect_errors", run.ConnectErrors, "retries", retries, "delivered", run.Delivered, "expected", run.Expected, "duplicates", extra,
		"errors", run.Errors, "redis_cpu_cores", run.RedisCPU, "redis_cpu_s", run.RedisCPUSecs, "server_cpu_cores", run.ServerCPU, "note", run.Note)
	return run, nil
}

// redisCPU is Redis's used_cpu_sys + used_cpu_user, in seconds.
func (r *Runner) redisCPU() (float64, error) {
	if r.cfg.RedisCPU == nil {
		return 0, nil
	}
	return r.cfg.RedisCPU()
}
