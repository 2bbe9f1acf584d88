package bus_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/oshirase/oshirase/bus"
	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/wire"
)

// The shared suite: every test runs against every Redis topology the bus
// supports, through forEachTopology. A topology starts a deployment of its
// own for each test (real redis-server processes on free ports), so tests
// are isolated and may kill and restart it.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deployment is one running Redis topology.
type deployment interface {
	// client returns a new client for commands (a test closes it): the
	// kind the services use on this topology.
	client() redis.UniversalClient
	// masters are the servers that take publishes and carry Pub/Sub
	// connections now.
	masters() []*redistest.Server
	// sharded says whether notices travel by sharded Pub/Sub.
	sharded() bool
	// stop kills every Redis process; start brings them back on the same
	// addresses, empty.
	stop()
	start()
	// freeze stops every Redis process (sentinels too) with SIGSTOP (connections are
	// accepted, nothing is answered); thaw resumes them.
	freeze()
	thaw()
}

type topology struct {
	name   string
	deploy func(t *testing.T) deployment
}

// topologies lists what the suite runs against.
var topologies = []topology{
	{name: "single", deploy: func(t *testing.T) deployment { return single{redistest.Start(t)} }},
	{name: "cluster", deploy: func(t *testing.T) deployment { return cluster{redistest.StartCluster(t, 3, 1)} }},
	{name: "sentinel", deploy: func(t *testing.T) deployment { return sentinel{redistest.StartSentinel(t)} }},
}

type single struct{ srv *redistest.Server }

func (s single) client() redis.UniversalClient { return s.srv.Client() }
func (s single) masters() []*redistest.Server  { return []*redistest.Server{s.srv} }
func (s single) sharded() bool                 { return false }
func (s single) stop()                         { s.srv.Stop() }
func (s single) start()                        { s.srv.Start() }
func (s single) freeze()                       { s.srv.Freeze() }
func (s single) thaw()                         { s.srv.Thaw() }

// cluster is 3 masters with a replica each.
type cluster struct{ c *redistest.Cluster }

func (c cluster) client() redis.UniversalClient { return c.c.Client() }
func (c cluster) masters() []*redistest.Server  { return c.c.Masters() }
func (c cluster) sharded() bool                 { return true }
func (c cluster) stop()                         { c.c.Stop() }
func (c cluster) start()                        { c.c.Start() }
func (c cluster) freeze()                       { c.c.Freeze() }
func (c cluster) thaw()                         { c.c.Thaw() }

// sentinel is a master, a replica and 3 sentinels; stop and start apply to
// the master and replica (the sentinels keep watching).
type sentinel struct{ s *redistest.Sentinel }

func (s sentinel) client() redis.UniversalClient { return s.s.Client() }
func (s sentinel) masters() []*redistest.Server  { return []*redistest.Server{s.s.Master()} }
func (s sentinel) sharded() bool                 { return false }
func (s sentinel) stop()                         { s.s.Stop() }
func (s sentinel) start()                        { s.s.Start() }
func (s sentinel) freeze()                       { s.s.Freeze() }
func (s sentinel) thaw()                         { s.s.Thaw() }

// forEachTopology runs test against every topology; TOPOLOGY=single (or
// cluster, sentinel) runs one.
func forEachTopology(t *testing.T, test func(t *testing.T, d deployment)) {
	only := os.Getenv("TOPOLOGY")
	for _, tp := range topologies {
		if only != "" && only != tp.name {
			continue
		}
		t.Run(tp.name, func(t *testing.T) { test(t, tp.deploy(t)) })
	}
}

// onlyOn skips a test of one topology's own when TOPOLOGY names another.
func onlyOn(t *testing.T, name string) {
	t.Helper()
	if only := os.Getenv("TOPOLOGY"); only != "" && only != name {
		t.Skipf("a test of the %s topology only; TOPOLOGY=%s asks for another (unset, as in make test, every topology runs)", name, only)
	}
}

// inbox collects what a subscriber side hands up.
type inbox struct {
	mu   sync.Mutex
	msgs map[wire.Channel][]string
}

func newInbox() *inbox { return &inbox{msgs: map[wire.Channel][]string{}} }

func (in *inbox) handle(ch wire.Channel, p []byte) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.msgs[ch] = append(in.msgs[ch], string(p))
}

func (in *inbox) count(ch wire.Channel) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs[ch])
}

func (in *inbox) got(ch wire.Channel) []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.msgs[ch]...)
}

// instance is one sub instance's bus (with a Handler) or, with in nil, a
// pub's publish-only bus; edits change its configuration.
func instance(t *testing.T, d deployment, in *inbox, edits ...func(*bus.Config)) *bus.Redis {
	t.Helper()
	return instanceWith(t, d, in, func(c *bus.Config) {
		for _, edit := range edits {
			edit(c)
		}
	})
}

// instanceWith is instance with changes to its configuration.
func instanceWith(t *testing.T, d deployment, in *inbox, configure func(*bus.Config)) *bus.Redis {
	t.Helper()
	rdb := d.client()
	cfg := bus.Config{
		Client: rdb, CountTTL: 3 * time.Second, HealthInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if in != nil {
		cfg.Handler = in.handle
	}
	configure(&cfg)
	b, err := bus.NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close()
		_ = rdb.Close()
	})
	return b
}

// publish publishes a fresh message through p and answers receivedUsers.
func publish(t *testing.T, p bus.Publisher, ch wire.Channel, text string) int {
	t.Helper()
	n, err := tryPublish(p, ch, text)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tryPublish(p bus.Publisher, ch wire.Channel, text string) (int, error) {
	m, err := wire.NewMessage(text, wire.ScopePerson, time.Now())
	if err != nil {
		return 0, err
	}
	payload, err := m.Encode()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := p.Publish(ctx, ch, payload)
	return res.Receivers, err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUpTo(t, 10*time.Second, what, cond)
}

func waitUpTo(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// subscribedChannels lists the channels Redis has subscribers for, over
// every master (shard channels on a cluster), leaving out the buses'
// delivery probes and the sentinels' own.
func subscribedChannels(t *testing.T, d deployment) []string {
	t.Helper()
	var out []string
	for _, m := range d.masters() {
		rdb := m.Client()
		var chs []string
		var err error
		if d.sharded() {
			chs, err = rdb.PubSubShardChannels(context.Background(), "*").Result()
		} else {
			chs, err = rdb.PubSubChannels(context.Background(), "*").Result()
		}
		rdb.Close()
		if err != nil {
			return nil
		}
		for _, ch := range chs {
			if !strings.HasPrefix(ch, "oshirase:probe:") && !strings.HasPrefix(ch, "__sentinel__:") {
				out = append(out, ch)
			}
		}
	}
	return out
}
