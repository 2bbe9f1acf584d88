package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/wire"
)

// A shard is one Pub/Sub connection and what it carries: on a single Redis
// or Sentinel the only one, on a cluster the one to a master, carrying the
// channels whose slots that master owns (SSUBSCRIBE: a notice travels only
// within its shard). Each has a reader, a prober, and its own health.
//
// go-redis's sharded Pub/Sub has traps this avoids (see the README's
// Redis Cluster section): a ClusterClient's PubSub reaches only the node
// of the first channel's slot, so each shard opens its own connection to
// its own master; and go-redis re-subscribes after a reconnect with one
// SSUBSCRIBE of every channel, which a cluster refuses (CROSSSLOT) when
// they span slots, and which names channels whose slot moved away (MOVED),
// so on a cluster every reconnect is the shard's own: a fresh PubSub, one
// SSUBSCRIBE per slot.
type shard struct {
	b       *Redis
	addr    string        // the master's address; "" when not a cluster
	client  *redis.Client // opens the Pub/Sub connection, sends the probes
	own     bool          // client is the shard's own (cluster): closed with it
	sharded bool          // SSUBSCRIBE / SPUBLISH

	// mu guards what follows, and is held while commands are sent on ps,
	// so that a replacement of ps sees every channel sent on the old one.
	mu         sync.Mutex
	ps         *redis.PubSub
	chans      map[wire.Channel]struct{} // channels wanted on this shard
	probeCh    string                    // this instance's probe channel here
	needResub  bool                      // ps is new: subscribe everything on it
	replaceWhy error                     // ps is to be replaced, and why
	// work is set while needResub or replaceWhy is: the reader looks at
	// it, not at the mutex, between messages.
	work atomic.Bool
	// cur is ps for the reader, which never takes mu between messages
	// (the sync loop holds it while it writes SUBSCRIBEs).
	cur          atomic.Pointer[redis.PubSub]
	closed       bool
	probeCurrent atomic.Pointer[string] // probeCh, for the reader
	// probeAsked is when probeCh was last subscribed on a connection, zero
	// once Redis confirmed it: a probe is sent only on a confirmed
	// subscription, and one unconfirmed past ProbeTimeout fails it.
	probeAsked atomic.Int64 // Unix ns
	// recvd counts the messages and (un)subscribe confirmations the reader
	// took off the connection (not PONGs: a connection that answers PINGs
	// and delivers nothing is the failure the probe is for): a probe late behind a backlog the
	// reader is still working through is told from one that is lost by it
	// moving. confirmSeen is its value at the prober's last look.
	recvd       atomic.Uint64
	confirmSeen uint64

	healthy  atomic.Bool
	probeErr atomic.Pointer[error] // nil: the last probe came back
	arrived  chan string           // probe payloads received
	replaced atomic.Int64          // connections replaced after a failed probe or error

	done chan struct{}
	wg   sync.WaitGroup
}

// addShard starts a shard on client (addr "" when not a cluster).
func (b *Redis) addShard(addr string, client *redis.Client, own bool) *shard {
	s := &shard{
		b: b, addr: addr, client: client, own: own, sharded: own,
		chans:     map[wire.Channel]struct{}{},
		needResub: true,
		arrived:   make(chan string, 16),
		done:      make(chan struct{}),
	}
	s.ps = s.newPubSub()
	s.cur.Store(s.ps)
	s.work.Store(true)
	noProbe := error(errNoProbeYet)
	s.probeErr.Store(&noProbe)
	s.setProbeChannel(b.probeChannel(s))
	b.shardsMu.Lock()
	b.shards[addr] = s
	b.shardsMu.Unlock()
	s.wg.Add(2)
	go s.receive()
	go s.prober()
	return s
}

// shardList returns the shards now.
func (b *Redis) shardList() []*shard {
	b.shardsMu.Lock()
	defer b.shardsMu.Unlock()
	out := make([]*shard, 0, len(b.shards))
	for _, s := range b.shards {
		out = append(out, s)
	}
	return out
}

var errNoProbeYet = errors.New("no delivery probe has come back yet")

func (s *shard) newPubSub() *redis.PubSub {
	if s.sharded {
		return s.client.SSubscribe(context.Background())
	}
	return s.client.Subscribe(context.Background())
}

// name is how Ready's reasons name the shard: without addresses, which
// /readyz shows to whoever asks (the logs name the master).
func (s *shard) name() string {
	if s.addr == "" {
		return "redis"
	}
	return "a redis cluster master"
}

// probeChannel names the channel this instance proves a shard with: on a
// cluster, one whose slot the shard's master owns. Probe channels are
// outside wire's "oshirase:v1:" names and never reach the Handler.
func (b *Redis) probeChannel(s *shard) string {
	base := "oshirase:probe:{" + b.cfg.InstanceID
	if s.addr == "" {
		return base + "}"
	}
	for i := 0; ; i++ {
		ch := base + "/" + strconv.Itoa(i) + "}"
		slot := slotOf(ch)
		if b.slots == nil || b.slots[slot] == s || i > 100_000 {
			return ch
		}
	}
}

// setProbeChannel moves the shard's probe to ch.
func (s *shard) setProbeChannel(ch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probeCh == ch {
		return
	}
	ctx, cancel := context.WithTimeout(s.b.stopCtx, s.b.cfg.ProbeTimeout)
	defer cancel()
	if s.probeCh != "" && !s.needResub {
		s.unsub(ctx, []string{s.probeCh})
	}
	s.probeCh = ch
	s.probeCurrent.Store(&ch)
	s.probeAsked.Store(time.Now().UnixNano())
	if !s.needResub {
		s.sub(ctx, []string{ch})
	}
}

// sub and unsub send on ps; s.mu is held. On a cluster one SSUBSCRIBE
// carries the channels of one slot (a cluster refuses more). A send that
// fails needs no handling (and its error is dropped): the shard keeps its
// set of channels, which go-redis (single Redis, Sentinel) or the shard's
// own replacement (cluster) subscribes on the next connection.
func (s *shard) sub(ctx context.Context, chs []string) {
	if !s.sharded {
		for part := range slices.Chunk(chs, s.b.cfg.Batch) {
			_ = s.ps.Subscribe(ctx, part...)
		}
		return
	}
	for _, part := range bySlot(chs) {
		_ = s.ps.SSubscribe(ctx, part...)
	}
}

func (s *shard) unsub(ctx context.Context, chs []string) {
	if !s.sharded {
		for part := range slices.Chunk(chs, s.b.cfg.Batch) {
			_ = s.ps.Unsubscribe(ctx, part...)
		}
		return
	}
	for _, part := range bySlot(chs) {
		_ = s.ps.SUnsubscribe(ctx, part...)
	}
}

// bySlot groups channels by their hash slot, in a stable order.
func bySlot(chs []string) [][]string {
	groups := map[int][]string{}
	var slots []int
	for _, ch := range chs {
		sl := slotOf(ch)
		if _, ok := groups[sl]; !ok {
			slots = append(slots, sl)
		}
		groups[sl] = append(groups[sl], ch)
	}
	slices.Sort(slots)
	out := make([][]string, len(slots))
	for i, sl := range slots {
		out[i] = groups[sl]
	}
	return out
}

// subscribe adds chs to the shard and sends their SUBSCRIBEs; the sync
// loop awaits their confirmations. Errors need no handling: on a single
// Redis go-redis re-subscribes its set after a reconnect, on a cluster the
// shard's own replacement does.
func (s *shard) subscribe(ctx context.Context, chs []wire.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range chs {
		s.chans[ch] = struct{}{}
	}
	s.b.expect(s, chs)
	if !s.needResub {
		s.sub(ctx, strs(chs))
	}
}

// unsubscribe removes chs from the shard and sends their UNSUBSCRIBEs.
func (s *shard) unsubscribe(ctx context.Context, chs []wire.Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range chs {
		delete(s.chans, ch)
	}
	s.b.forget(s, chs)
	if !s.needResub {
		s.unsub(ctx, strs(chs))
	}
}

// replace asks the reader to drop the connection for a new one.
func (s *shard) replace(why error) {
	s.mu.Lock()
	if s.replaceWhy == nil {
		s.replaceWhy = why
	}
	s.work.Store(true)
	ps := s.ps
	s.mu.Unlock()
	// Wake the reader: closing the PubSub ends its read at once.
	_ = ps.Close()
}

// renew swaps in a new PubSub when a replacement was asked for; the reader
// calls it. It reports whether it did.
func (s *shard) renew() bool {
	s.mu.Lock()
	why := s.replaceWhy
	if why == nil || s.closed {
		s.mu.Unlock()
		return false
	}
	s.replaceWhy = nil
	old := s.ps
	s.ps = s.newPubSub()
	s.cur.Store(s.ps)
	s.needResub = true
	n := len(s.chans)
	s.mu.Unlock()
	_ = old.Close()
	s.setHealthy(false, why) // until the new connection answers
	s.replaced.Add(1)
	s.b.log.Warn("replacing redis pub/sub connection", "shard", s.addr, "reason", why, "channels", n)
	return true
}

// resubscribe connects a new PubSub and subscribes every channel of the
// shard on it, with the probe's; the next round rewrites every count once
// they are confirmed.
func (s *shard) resubscribe() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.needResub || s.closed {
		s.work.Store(s.replaceWhy != nil && !s.closed)
		return nil
	}
	ctx, cancel := context.WithTimeout(s.b.stopCtx, s.b.cfg.ProbeTimeout)
	defer cancel()
	// Connect with nothing to re-subscribe (go-redis would send one
	// SSUBSCRIBE of everything).
	if err := s.ps.Ping(ctx); err != nil {
		return err
	}
	chs := make([]wire.Channel, 0, len(s.chans))
	for ch := range s.chans {
		chs = append(chs, ch)
	}
	s.b.expectOnce(s, chs)
	// The probe channel first: its confirmation must not wait behind
	// every other channel's.
	all := append([]string{s.probeCh}, strs(chs)...)
	s.probeAsked.Store(time.Now().UnixNano())
	s.needResub = false
	s.work.Store(s.replaceWhy != nil)
	s.sub(ctx, all)
	s.b.requestResync()
	return nil
}

// receive reads the shard's Pub/Sub connection until close.
//
// A silent connection is pinged every HealthInterval. A PING still
// unanswered at the next one marks the connection down: a Redis that
// accepts bytes and never answers (stopped, or stuck in a long script) must
// not look healthy, as a socket write to it still succeeds.
func (s *shard) receive() {
	defer s.wg.Done()
	ctx := context.Background() // close ends the reads by closing the connection
	backoff := 50 * time.Millisecond
	pinged := false
	wait := func() bool {
		select {
		case <-s.done:
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
		return true
	}
	for {
		select {
		case <-s.done:
			return
		default:
		}
		if s.work.Load() {
			if s.renew() {
				pinged = false
			}
			if err := s.resubscribe(); err != nil {
				s.setHealthy(false, err)
				if s.sharded {
					s.b.kickTopology()
				}
				if !wait() {
					return
				}
				continue
			}
		}
		ps := s.cur.Load()
		msg, err := ps.ReceiveTimeout(ctx, s.b.cfg.HealthInterval)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			s.mu.Lock()
			swapped := ps != s.ps || s.replaceWhy != nil
			s.mu.Unlock()
			if swapped {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pinged {
					s.setHealthy(false, errNoPong)
				}
				// Silence: ask for a PONG. A dead connection fails the next read.
				if perr := ps.Ping(ctx); perr != nil {
					s.setHealthy(false, perr)
				}
				pinged = true
				continue
			}
			s.setHealthy(false, err)
			if s.sharded {
				// go-redis has reconnected on its own and re-subscribed in
				// one SSUBSCRIBE, or Redis refused one (MOVED: the slot has
				// a new owner): start afresh, and read the slot map again.
				s.b.kickTopology()
				s.mu.Lock()
				if s.replaceWhy == nil {
					s.replaceWhy = err
				}
				s.work.Store(true)
				s.mu.Unlock()
			}
			if !wait() {
				return
			}
			continue
		}
		backoff = 50 * time.Millisecond
		pinged = false
		s.setHealthy(true, nil)
		switch m := msg.(type) {
		case *redis.Message:
			s.recvd.Add(1)
			if p := s.probeCurrent.Load(); p != nil && m.Channel == *p {
				select {
				case s.arrived <- m.Payload:
				default:
				}
				continue
			}
			s.b.cfg.Handler(wire.Channel(m.Channel), []byte(m.Payload))
		case *redis.Subscription:
			s.recvd.Add(1)
			switch m.Kind {
			case "subscribe", "ssubscribe":
				probe := m.Channel == *s.probeCurrent.Load()
				if probe {
					s.probeAsked.Store(0)
				}
				s.b.confirm(s, wire.Channel(m.Channel), probe)
			case "sunsubscribe":
				// Redis unsubscribes a shard channel itself when its slot
				// moves to another master: follow the slot.
				s.mu.Lock()
				_, wanted := s.chans[wire.Channel(m.Channel)]
				mine := m.Channel == s.probeCh
				s.mu.Unlock()
				if wanted || mine {
					s.b.followMove()
				}
			}
		}
	}
}

// errNoPong is why a connection that stopped answering counts as down.
var errNoPong = errors.New("bus: redis did not answer a PING within the health interval")

func (s *shard) setHealthy(ok bool, err error) {
	if s.healthy.Swap(ok) != ok {
		if ok {
			s.b.log.Info("redis pub/sub connected", "shard", s.addr)
			// Back after an outage: Redis may have restarted empty, so
			// every count is rewritten now, whoever re-subscribed (go-redis
			// on its own, or the shard) and however the confirmations
			// came back.
			s.b.requestResync()
		} else {
			s.b.log.Warn("redis pub/sub connection lost; reconnecting", "shard", s.addr, "err", err)
		}
	}
}

// prober proves, every ProbeInterval (and at once at the start), that the
// connection delivers: a probe published to the shard's probe channel
// must come back on it within ProbeTimeout. One that does not makes the
// shard not ready and its connection replaced. A probe that cannot be
// published (Redis is down) makes it not ready; the reader's reconnects
// handle the rest.
func (s *shard) prober() {
	defer s.wg.Done()
	tick := time.NewTicker(s.b.cfg.ProbeInterval)
	defer tick.Stop()
	var seq int64
	soon := time.After(0)
	for {
		select {
		case <-s.done:
			return
		case <-soon:
		case <-tick.C:
		}
		seq++
		s.probe(strconv.FormatInt(seq, 10))
		if s.unproven() {
			// Starting: the connection is not up yet, or its probe channel
			// not confirmed. Try again shortly, not a ProbeInterval later:
			// the shard is not ready until a probe comes back.
			soon = time.After(min(s.b.cfg.ProbeInterval, startProbeRetry))
		}
	}
}

// startProbeRetry is how soon a shard that has not proven delivery since
// it started probes again.
const startProbeRetry = 100 * time.Millisecond

// unproven reports whether no probe has come back since the shard started.
func (s *shard) unproven() bool {
	p := s.probeErr.Load()
	return p != nil && errors.Is(*p, errNoProbeYet)
}

func (s *shard) probe(token string) {
	if !s.healthy.Load() {
		if !s.unproven() { // starting, it says so already
			s.setProbe(fmt.Errorf("%s: pub/sub connection is down", s.name()))
		}
		return
	}
	s.mu.Lock()
	renewing := s.replaceWhy != nil || s.needResub
	s.mu.Unlock()
	if renewing {
		return // the connection is being replaced: probe the new one
	}
	if asked := s.probeAsked.Load(); asked != 0 {
		// The probe channel is not subscribed yet: wait for it, up to
		// ProbeTimeout (a connection that does not confirm it is no better
		// than one that does not deliver), longer while the reader is
		// still taking replies off the connection (the confirmations of a
		// large re-subscription), up to backlogLimit.
		since := time.Since(time.Unix(0, asked))
		if s.busy(&s.confirmSeen) && since < s.backlogLimit() {
			return
		}
		if since > s.b.cfg.ProbeTimeout {
			err := fmt.Errorf("%s: delivery probe channel not confirmed within %s", s.name(), s.b.cfg.ProbeTimeout)
			s.setProbe(err)
			s.replace(err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(s.b.stopCtx, s.b.cfg.ProbeTimeout)
	defer cancel()
	ch := *s.probeCurrent.Load()
	seen := s.recvd.Load()
	var err error
	if s.sharded {
		err = s.client.SPublish(ctx, ch, token).Err()
	} else {
		err = s.client.Publish(ctx, ch, token).Err()
	}
	if err != nil {
		if s.sharded {
			s.b.kickTopology()
		}
		s.b.log.Debug("delivery probe could not be published", "shard", s.addr, "err", err)
		s.setProbe(fmt.Errorf("%s: delivery probe could not be published (redis unavailable)", s.name()))
		return
	}
	// The probe must come back within ProbeTimeout; while the reader keeps
	// taking other replies off the connection (it is behind, not stuck:
	// Redis delivers in order, so the probe is in that backlog), each
	// ProbeTimeout with progress extends the wait, up to backlogLimit.
	start := time.Now()
	wait := time.NewTimer(s.b.cfg.ProbeTimeout)
	defer wait.Stop()
	for {
		select {
		case got := <-s.arrived:
			if got == token {
				s.setProbe(nil)
				return
			}
		case <-s.done:
			return
		case <-wait.C:
			if s.busy(&seen) && time.Since(start) < s.backlogLimit() {
				wait.Reset(s.b.cfg.ProbeTimeout)
				continue
			}
			err := fmt.Errorf("%s: delivery probe not received within %s", s.name(), s.b.cfg.ProbeTimeout)
			s.setProbe(err)
			s.replace(err)
			return
		}
	}
}

// busy reports whether the reader took anything off the connection since
// *seen, and moves *seen on.
func (s *shard) busy(seen *uint64) bool {
	n := s.recvd.Load()
	moved := n != *seen
	*seen = n
	return moved
}

// backlogLimit is how long a probe may be late while the connection keeps
// delivering other replies: a connection that far behind is replaced.
func (s *shard) backlogLimit() time.Duration {
	return backlogProbeTimeouts * s.b.cfg.ProbeTimeout
}

// backlogProbeTimeouts × ProbeTimeout (30 s by default) bounds a probe's
// wait behind a backlog.
const backlogProbeTimeouts = 15

func (s *shard) setProbe(err error) {
	old := s.probeErr.Swap(&err)
	was := old != nil && *old != nil
	if err != nil && !was {
		s.b.log.Warn("redis pub/sub not proven to deliver", "shard", s.addr, "err", err)
	} else if err == nil && was && !errors.Is(*old, errNoProbeYet) {
		s.b.log.Info("redis pub/sub delivers again", "shard", s.addr)
	}
}

// ready is nil when the shard's connection is up and its last probe came
// back.
func (s *shard) ready() error {
	if !s.healthy.Load() {
		return fmt.Errorf("%s: pub/sub connection is down", s.name())
	}
	if p := s.probeErr.Load(); p != nil && *p != nil {
		return *p
	}
	return nil
}

// close stops the shard's goroutines and closes its connection (and its
// client, when its own).
func (s *shard) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	close(s.done)
	err := ps.Close()
	s.wg.Wait()
	if s.own {
		_ = s.client.Close()
	}
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}

// Ready reports whether the bus delivers: nil when every Pub/Sub
// connection is up and its last delivery probe came back (ProbeInterval),
// else why not. A publish-only bus (pub) checks instead, within ctx, that
// Redis answers and has the publish script (on a cluster every master).
func (b *Redis) Ready(ctx context.Context) error {
	if b.cfg.Handler == nil {
		return b.publishReady(ctx)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	shards := b.shardList()
	if len(shards) == 0 {
		return errors.New("redis cluster: no master known yet")
	}
	slices.SortFunc(shards, func(x, y *shard) int { return cmp.Compare(x.addr, y.addr) })
	for _, s := range shards {
		if err := s.ready(); err != nil {
			return err
		}
	}
	return nil
}

// publishReady: Redis answers, and has the publish script, loaded now if
// it was missing (a new or restarted Redis).
func (b *Redis) publishReady(ctx context.Context) error {
	exists, err := b.cfg.Client.ScriptExists(ctx, b.publish.Hash()).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(exists) == 1 && exists[0] {
		return nil
	}
	if err := b.publish.Load(ctx, b.cfg.Client).Err(); err != nil {
		return fmt.Errorf("%w: loading the publish script: %w", ErrUnavailable, err)
	}
	return nil
}

// Replaced counts Pub/Sub connections replaced because a probe did not
// come back or (on a cluster) the connection failed.
func (b *Redis) Replaced() int64 {
	b.shardsMu.Lock()
	defer b.shardsMu.Unlock()
	n := b.retiredReplaced.Load()
	for _, s := range b.shards {
		n += s.replaced.Load()
	}
	return n
}
