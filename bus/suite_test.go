package bus_test

import (
	"context"
	"io"
	"log/slog"
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
	// client returns a new client for commands (a test closes it).
	client() *redis.Client
	// stop kills every Redis process; start brings them back on the same
	// addresses, empty.
	stop()
	start()
	// freeze stops every Redis process with SIGSTOP (connections are
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
}

type single struct{ srv *redistest.Server }

func (s single) client() *redis.Client { return s.srv.Client() }
func (s single) stop()                 { s.srv.Stop() }
func (s single) start()                { s.srv.Start() }
func (s single) freeze()               { s.srv.Freeze() }
func (s single) thaw()                 { s.srv.Thaw() }

func forEachTopology(t *testing.T, test func(t *testing.T, d deployment)) {
	for _, tp := range topologies {
		t.Run(tp.name, func(t *testing.T) { test(t, tp.deploy(t)) })
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

func subscribedChannels(t *testing.T, d deployment) []string {
	t.Helper()
	rdb := d.client()
	defer rdb.Close()
	chs, err := rdb.PubSubChannels(context.Background(), "*").Result()
	if err != nil {
		return nil
	}
	return chs
}
