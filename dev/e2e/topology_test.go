package e2e_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
	"github.com/oshirase/oshirase/wire"
)

// The real binaries on a Redis Cluster (REDIS_CLUSTER_ADDRS) and on a
// Sentinel-managed Redis (REDIS_SENTINEL_ADDRS / _MASTER): users whose
// channels lie on different masters get their notices with the right
// receivedUsers, and after a master is killed, notices flow again.

func TestServicesOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	addrs := "REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ",")
	pub := harness.StartPub(t, c.Nodes[0], addrs)
	sub := harness.StartSub(t, c.Nodes[0], addrs, "REDIS_PROBE_INTERVAL=500ms")
	users := make([]string, 12) // 12 users: every master owns some of them
	cl := connect(t, sub, gqlws.TransportWS)
	for i := range users {
		users[i] = fmt.Sprint("user-", i)
		subscribe(t, cl, fmt.Sprint(i), users[i])
	}
	for _, u := range users {
		pub.WaitReceivers(u, 1)
	}
	for _, u := range users {
		if n := send(t, pub, u, "hi "+u); n != 1 {
			t.Fatalf("%s: receivedUsers %d, want 1", u, n)
		}
		expectNotice(t, cl, "hi "+u)
	}
	c.KillMaster(c.Masters()[0])
	sub.WaitReady(30 * time.Second)
	for _, u := range users {
		pub.WaitReceivers(u, 1)
		send(t, pub, u, "again "+u)
		expectNotice(t, cl, "again "+u)
	}
}

// Credentials for a cluster come from REDIS_URL, for every node: on a
// cluster whose nodes all require a password, the seed nodes, each
// master's Pub/Sub connection (the bus's own), the counts and the
// publishes all authenticate, and users on every master get their notices
// with the right receivedUsers.
func TestServicesOnPasswordProtectedCluster(t *testing.T) {
	const password = "s3cret-for-every-node"
	c := redistest.StartClusterWithPassword(t, 3, 0, password)
	anon := redis.NewClient(&redis.Options{Addr: c.Nodes[0].Addr, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Ping(context.Background()).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password: %v, want NOAUTH", err)
	}
	env := []string{"REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ","), "REDIS_URL=redis://:" + password + "@" + c.Nodes[0].Addr}
	pub := harness.StartPub(t, c.Nodes[0], env...)
	sub := harness.StartSub(t, c.Nodes[0], append(env, "REDIS_PROBE_INTERVAL=500ms")...)
	cl := connect(t, sub, gqlws.TransportWS)
	masters := map[string]bool{}
	slots := c.Slots("")
	cc := c.Client()
	defer cc.Close()
	var users []string
	for i := 0; len(masters) < 3 || len(users) < 6; i++ {
		u := fmt.Sprint("guarded-", i)
		ch, _ := wire.PersonChannel(wire.DemoTenant, u)
		slot, err := cc.ClusterKeySlot(context.Background(), string(ch)).Result()
		if err != nil {
			t.Fatal(err)
		}
		masters[slots[int(slot)]] = true
		users = append(users, u)
	}
	for i, u := range users {
		subscribe(t, cl, fmt.Sprint(i), u)
	}
	for _, u := range users {
		pub.WaitReceivers(u, 1)
	}
	for _, u := range users {
		if n := send(t, pub, u, "hi "+u); n != 1 {
			t.Fatalf("%s: receivedUsers %d, want 1", u, n)
		}
		expectNotice(t, cl, "hi "+u)
	}
}

func TestServicesOnSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	env := []string{"REDIS_SENTINEL_ADDRS=" + strings.Join(s.SentinelAddrs(), ","), "REDIS_SENTINEL_MASTER=" + redistest.MasterName}
	pub := harness.StartPub(t, s.Master(), env...)
	sub := harness.StartSub(t, s.Master(), append(env, "REDIS_PROBE_INTERVAL=500ms")...)
	cl := connect(t, sub, gqlws.TransportWS)
	subscribe(t, cl, "1", "bob")
	pub.WaitReceivers("bob", 1)
	send(t, pub, "bob", "before")
	expectNotice(t, cl, "before")
	s.KillMaster()
	sub.WaitReady(30 * time.Second)
	pub.WaitReceivers("bob", 1)
	send(t, pub, "bob", "after")
	expectNotice(t, cl, "after")
}

// placer names tenants, stores and users so that their channels lie on
// the cluster master a test chooses (CLUSTER KEYSLOT and the slot map).
type placer struct {
	t       *testing.T
	rdb     *redis.Client
	slots   map[int]string
	masters []*redistest.Server
	n       int // names are <prefix>-<n>, unique in the test
}

func newPlacer(t *testing.T, c *redistest.Cluster) *placer {
	t.Helper()
	p := &placer{t: t, slots: c.Slots(""), masters: c.Masters()}
	p.rdb = p.masters[0].Client()
	t.Cleanup(func() { p.rdb.Close() })
	return p
}

// master is the index in masters of the master that owns ch.
func (p *placer) master(ch wire.Channel) int {
	p.t.Helper()
	slot, err := p.rdb.ClusterKeySlot(context.Background(), string(ch)).Result()
	if err != nil {
		p.t.Fatal(err)
	}
	return slices.IndexFunc(p.masters, func(m *redistest.Server) bool { return m.Addr == p.slots[int(slot)] })
}

// name returns a new name prefix-N whose channel, channel(name), lies on
// masters[m].
func (p *placer) name(prefix string, m int, channel func(name string) (wire.Channel, error)) string {
	p.t.Helper()
	for range 1000 {
		p.n++
		name := fmt.Sprint(prefix, "-", p.n)
		ch, err := channel(name)
		if err != nil {
			p.t.Fatal(err)
		}
		if p.master(ch) == m {
			return name
		}
	}
	p.t.Fatalf("no name %s-N on master %s", prefix, p.masters[m].Addr)
	return ""
}

// The compose cluster topology (docker-compose.cluster.yml) started as
// processes (issue 11): a Redis Cluster of three masters with a replica
// each, pub, and three sub instances on it (REDIS_CLUSTER_ADDRS) behind
// nginx with deploy/nginx/sub.conf. Twelve users of three tenants, two
// stores a tenant and two users a store, connect only through nginx,
// which spreads them four to an instance; each company's, store's and
// user's name is chosen so that its channel lies on a given master, and
// every master holds channels of every scope but PUBLIC (one channel).
// Every notice, of every scope, is counted across the three instances —
// receivedUsers exactly its audience, from sendNotification (PERSON) and
// publish (STORE, COMPANY, PUBLIC) — and delivered exactly once to
// exactly its audience.
func TestComposeClusterTopologyAsProcesses(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	s := startLBOn(t, c.Nodes[0], []string{"REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ",")})
	place := newPlacer(t, c)

	type member struct {
		user, tenant, store string
		client              *gqlws.Client
		instance            int      // the sub instance nginx sent it to
		want                []string // the notices it must receive
	}
	var members []*member
	tenants := map[string][]string{} // tenant → its stores
	var order []string               // tenants in order
	for ti := range 3 {
		tenant := place.name("co", ti, func(n string) (wire.Channel, error) { return wire.NewChannel(n, wire.ScopeCompany, "") })
		order = append(order, tenant)
		for sj := range 2 {
			store := place.name("st", (ti+sj+1)%3, func(n string) (wire.Channel, error) { return wire.NewChannel(tenant, wire.ScopeStore, n) })
			tenants[tenant] = append(tenants[tenant], store)
			for range 2 {
				// Users 0-2 on the first master, 3-5 on the second, …: nginx
				// gives consecutive users to different instances, so each
				// instance holds users of several masters.
				user := place.name("u", len(members)/3%3, func(n string) (wire.Channel, error) { return wire.PersonChannel(tenant, n) })
				members = append(members, &member{user: user, tenant: tenant, store: store})
			}
		}
	}

	// One at a time, so that least_conn spreads them evenly; each
	// instance's connection count tells which one nginx chose.
	for i, m := range members {
		proto := gqlws.TransportWS
		if i%2 == 1 {
			proto = gqlws.LegacyWS
		}
		before := s.spread(t)
		m.client = s.connectUser(t, proto, m.user, m.tenant, m.store)
		waitReceiversAs(t, s.pub, platformKey, map[string]any{"scope": "PERSON", "to": m.user, "tenant": m.tenant}, 1)
		after := s.spread(t)
		m.instance = -1
		for k := range after {
			switch after[k] - before[k] {
			case 0:
			case 1:
				if m.instance >= 0 {
					t.Fatalf("%s: connections per instance %v → %v, want one more on one instance", m.user, before, after)
				}
				m.instance = k
			default:
				t.Fatalf("%s: connections per instance %v → %v, want one more on one instance", m.user, before, after)
			}
		}
		if m.instance < 0 {
			t.Fatalf("%s: connections per instance %v → %v, want one more on one instance", m.user, before, after)
		}
	}
	if n := s.spread(t); !slices.Equal(n, []int{4, 4, 4}) {
		t.Fatalf("connections per instance %v, want the 12 users spread 4 to an instance", n)
	}
	// Each company's four users span more than one instance (nginx's
	// least_conn puts users 0-2, 3-5, … on three different ones), so its
	// count, on its own master, adds up several instances' subscriptions.
	for _, tenant := range order {
		on := map[int]bool{}
		for _, m := range members {
			if m.tenant == tenant {
				on[m.instance] = true
			}
		}
		if len(on) < 2 {
			t.Fatalf("company %s: all its users on one instance %v", tenant, on)
		}
	}
	for k := range s.subs {
		var where []string
		for _, m := range members {
			if m.instance == k {
				ch, _ := wire.PersonChannel(m.tenant, m.user)
				where = append(where, fmt.Sprintf("%s/%s/%s (person on master %d)", m.tenant, m.store, m.user, place.master(ch)))
			}
		}
		t.Logf("sub instance %d: %v", k, where)
	}

	// Counts settled (written per master, as each shard confirms).
	everyone := map[string]any{"scope": "PUBLIC"}
	waitReceiversAs(t, s.pub, platformKey, everyone, len(members))
	for _, tenant := range order {
		waitReceiversAs(t, s.pub, platformKey, map[string]any{"scope": "COMPANY", "tenant": tenant}, 4)
		for _, store := range tenants[tenant] {
			waitReceiversAs(t, s.pub, platformKey, map[string]any{"scope": "STORE", "tenant": tenant, "to": store}, 2)
		}
	}

	expect := func(what string, n, want int, err error) {
		t.Helper()
		if err != nil || n != want {
			t.Fatalf("%s: receivedUsers %d, %v; want %d across the instances", what, n, err, want)
		}
	}
	for _, m := range members {
		text := "person " + m.tenant + "/" + m.user
		tok := hmacKey.Sign(t, map[string]any{"sub": "e2e", "tenant": m.tenant, "roles": []string{"publisher"}, "exp": time.Now().Add(time.Hour).Unix()})
		n, err := s.pub.Send(m.user, text, "Authorization", "Bearer "+tok)
		expect("sendNotification to "+m.tenant+"/"+m.user, n, 1, err)
		m.want = append(m.want, text)
	}
	for _, tenant := range order {
		for _, store := range tenants[tenant] {
			text := "store " + tenant + "/" + store
			n, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "STORE", "tenant": tenant, "to": store, "text": text})
			expect(text, n, 2, err)
			for _, m := range members {
				if m.tenant == tenant && m.store == store {
					m.want = append(m.want, text)
				}
			}
		}
		text := "company " + tenant
		n, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "COMPANY", "tenant": tenant, "text": text})
		expect(text, n, 4, err)
		for _, m := range members {
			if m.tenant == tenant {
				m.want = append(m.want, text)
			}
		}
	}
	n, err := publishAs(t, s.pub, platformKey, map[string]any{"scope": "PUBLIC", "text": "public"})
	expect("public", n, len(members), err)
	for _, m := range members {
		m.want = append(m.want, "public")
		expectNoticesAnyOrder(t, m.client, m.want...)
	}
	// Nothing twice, nothing of another audience.
	quiet := 300 * time.Millisecond
	for _, m := range members {
		expectSilence(t, m.client, quiet)
		quiet = 10 * time.Millisecond // the first one's wait covers the rest
	}
}

// REDIS_URL=rediss://…: both services speak TLS to Redis and check its
// certificate against REDIS_URL's host (a certificate authority of the
// test's own, trusted through SSL_CERT_FILE, as Go reads it): a notice
// goes through with its receivedUsers, and every connection the services
// hold is on the TLS port.
func TestServicesOverTLSToRedis(t *testing.T) {
	r, tls := redistest.StartTLS(t)
	env := []string{"REDIS_URL=rediss://" + tls.Addr, "SSL_CERT_FILE=" + tls.CAFile}
	pub := harness.StartPub(t, r, env...)
	sub := harness.StartSub(t, r, env...)
	cl := connect(t, sub, gqlws.TransportWS)
	subscribe(t, cl, "1", "tls-bob")
	pub.WaitReceivers("tls-bob", 1)
	if n := send(t, pub, "tls-bob", "over tls"); n != 1 {
		t.Fatalf("receivedUsers %d, want 1", n)
	}
	expectNotice(t, cl, "over tls")

	rdb := r.Client()
	defer rdb.Close()
	list, err := rdb.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, tlsPort, _ := strings.Cut(tls.Addr, ":")
	onTLS := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if strings.Contains(line, "cmd=client|list") {
			continue // this test's own, on the plain port
		}
		if !strings.Contains(line, " laddr=127.0.0.1:"+tlsPort+" ") {
			t.Errorf("a connection not on the TLS port: %s", line)
		}
		onTLS++
	}
	if onTLS < 2 {
		t.Fatalf("%d connections on the TLS port, want pub's and sub's:\n%s", onTLS, list)
	}
}
