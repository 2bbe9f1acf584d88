package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// NodeTimeout is the cluster's cluster-node-timeout: a master silent this
// long is failed over to its replica (about this plus a second in all).
// Short, to keep tests quick; not shorter, as a busy test machine can
// stall a healthy node for a second and the cluster would fail it over.
const NodeTimeout = 2000 * time.Millisecond

// Cluster is a Redis Cluster of the test's own: redis-server processes
// with cluster mode on, on free ports, made one cluster by
// `redis-cli --cluster create`. Every node keeps its nodes.conf in a
// directory of the test's own, so a node stopped and started again comes
// back as the same node (empty: nothing else persists).
type Cluster struct {
	tb       testing.TB
	Nodes    []*Server
	password string
}

// StartCluster starts masters × (1 + replicasPer) nodes, creates the
// cluster (slots spread evenly over the masters) and waits until every
// node reports cluster_state:ok and agrees on the slots. t.Cleanup kills
// every node.
func StartCluster(tb testing.TB, masters, replicasPer int) *Cluster {
	tb.Helper()
	return startCluster(tb, masters, replicasPer, "")
}

// StartClusterWithPassword is StartCluster with every node requiring
// password (requirepass, and masterauth for its replication); the
// cluster's and its nodes' clients authenticate with it.
func StartClusterWithPassword(tb testing.TB, masters, replicasPer int, password string) *Cluster {
	tb.Helper()
	return startCluster(tb, masters, replicasPer, password)
}

func startCluster(tb testing.TB, masters, replicasPer int, password string) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, password: password}
	for range masters * (1 + replicasPer) {
		s := &Server{Port: freeClusterPort(tb), tb: tb, password: password}
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
		dir := tb.TempDir()
		s.extra = []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", dir + "/nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout.Milliseconds())),
			"--cluster-replica-validity-factor", "0", // a replica may always take over
			"--dir", dir,
		}
		if password != "" {
			s.extra = append(s.extra, "--requirepass", password, "--masterauth", password)
		}
		s.Start()
		tb.Cleanup(s.Stop)
		c.Nodes = append(c.Nodes, s)
	}
	args := append(c.auth(), "--cluster", "create")
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPer), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	return c
}

// auth is redis-cli's arguments to authenticate to the nodes.
func (c *Cluster) auth() []string {
	if c.password == "" {
		return nil
	}
	return []string{"--no-auth-warning", "-a", c.password}
}

// Addrs are every node's address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Client returns a new cluster client seeded with every node, honouring
// its callers' deadlines as the services' clients do.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Password: c.password, MaxRetries: -1, ContextTimeoutEnabled: true})
}

// node returns the node at addr.
func (c *Cluster) node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// clusterInfo answers CLUSTER INFO of one node, "" when it does not answer.
func clusterInfo(s *Server) string {
	rdb := s.Client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, _ := rdb.ClusterInfo(ctx).Result()
	return info
}

// Slots answers the slot map as the running node at addr (any running node
// when addr is "") sees it: slot → its master's address.
func (c *Cluster) Slots(addr string) map[int]string {
	c.tb.Helper()
	for _, n := range c.Nodes {
		if !n.Running() || (addr != "" && n.Addr != addr) {
			continue
		}
		rdb := n.Client()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		slots, err := rdb.ClusterSlots(ctx).Result()
		cancel()
		rdb.Close()
		if err != nil {
			continue
		}
		out := map[int]string{}
		for _, s := range slots {
			if len(s.Nodes) == 0 {
				continue
			}
			for slot := s.Start; slot <= s.End; slot++ {
				out[slot] = s.Nodes[0].Addr
			}
		}
		return out
	}
	c.tb.Fatal("redistest: no cluster node answers CLUSTER SLOTS")
	return nil
}

// Masters returns the running masters that own slots, as the cluster sees
// them now.
func (c *Cluster) Masters() []*Server {
	c.tb.Helper()
	seen := map[string]bool{}
	var out []*Server
	for _, addr := range c.Slots("") {
		if !seen[addr] {
			seen[addr] = true
			if n := c.node(addr); n != nil && n.Running() {
				out = append(out, n)
			}
		}
	}
	return out
}

// MasterOf returns the node that owns slot now.
func (c *Cluster) MasterOf(slot int) *Server {
	c.tb.Helper()
	n := c.node(c.Slots("")[slot])
	if n == nil {
		c.tb.Fatalf("redistest: no master for slot %d", slot)
	}
	return n
}

// WaitOK waits until every running node reports cluster_state:ok and all
// of them agree on which master owns every slot.
func (c *Cluster) WaitOK() {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		var first map[int]string
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			if !strings.Contains(clusterInfo(n), "cluster_state:ok") {
				ok = false
				break
			}
			s := c.Slots(n.Addr)
			if len(s) != 16384 {
				ok = false
				break
			}
			if first == nil {
				first = s
				continue
			}
			for slot, addr := range s {
				if first[slot] != addr {
					ok = false
					break
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, n := range c.Nodes {
				fmt.Fprintf(&b, "%s running=%v:\n%s\n", n.Addr, n.Running(), clusterInfo(n))
			}
			c.tb.Fatalf("redistest: the cluster did not settle within 30s:\n%s", b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// KillMaster kills master (SIGKILL) and waits until one of its replicas
// has taken over its slots and the cluster is ok again. It returns the
// promoted node. The killed node stays down until Start.
func (c *Cluster) KillMaster(master *Server) *Server {
	c.tb.Helper()
	var slot = -1
	for s, addr := range c.Slots("") {
		if addr == master.Addr {
			slot = s
			break
		}
	}
	if slot < 0 {
		c.tb.Fatalf("redistest: %s owns no slot", master.Addr)
	}
	master.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr := c.Slots("")[slot]; addr != master.Addr && addr != "" {
			c.WaitOK()
			return c.node(addr)
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("redistest: no replica took over from %s within 30s", master.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LowestSlot is the lowest-numbered slot master owns now: the slot
// Reshard (`redis-cli --cluster reshard`) moves first from it.
func (c *Cluster) LowestSlot(master *Server) int {
	c.tb.Helper()
	lowest := -1
	for slot, addr := range c.Slots("") {
		if addr == master.Addr && (lowest < 0 || slot < lowest) {
			lowest = slot
		}
	}
	if lowest < 0 {
		c.tb.Fatalf("redistest: %s owns no slot", master.Addr)
	}
	return lowest
}

// movingRE is redis-cli's line for each slot it moves:
// "Moving slot 10923 from 127.0.0.1:7003 to 127.0.0.1:7002: ".
var movingRE = regexp.MustCompile(`(?m)^Moving slot (\d+) from (\S+) to (\S+): `)

// Reshard moves n slots, with their keys, from the master from to the
// master to as an operator does: `redis-cli --cluster reshard
// --cluster-from <from's id> --cluster-to <to's id> --cluster-slots n
// --cluster-yes` (SETSLOT IMPORTING / MIGRATING, MIGRATE of every key,
// SETSLOT NODE on every master). redis-cli has no option to name the
// slots: from one source it moves that source's lowest-numbered slots
// (LowestSlot is the first). Reshard returns the slots redis-cli moved,
// once every node agrees that to owns them; it fails the test if
// redis-cli fails or moves other slots than that.
func (c *Cluster) Reshard(from, to *Server, n int) []int {
	c.tb.Helper()
	before := c.Slots("")
	var want []int
	for slot := 0; slot < 16384 && len(want) < n; slot++ {
		if before[slot] == from.Addr {
			want = append(want, slot)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append(c.auth(), "--cluster", "reshard", from.Addr,
		"--cluster-from", c.id(from), "--cluster-to", c.id(to), "--cluster-slots", strconv.Itoa(n),
		"--cluster-yes", "--cluster-pipeline", "100")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.tb.Fatalf("redistest: redis-cli --cluster reshard: %v\n%s", err, out)
	}
	var moved []int
	for _, m := range movingRE.FindAllStringSubmatch(string(out), -1) {
		if m[2] != from.Addr || m[3] != to.Addr {
			c.tb.Fatalf("redistest: redis-cli moved slot %s from %s to %s, asked from %s to %s:\n%s", m[1], m[2], m[3], from.Addr, to.Addr, out)
		}
		slot, _ := strconv.Atoi(m[1])
		moved = append(moved, slot)
	}
	if !slices.Equal(moved, want) {
		c.tb.Fatalf("redistest: redis-cli --cluster reshard moved slots %v, want %v (the %d lowest of %s):\n%s", moved, want, n, from.Addr, out)
	}
	c.WaitOK()
	slots := c.Slots("")
	for _, slot := range moved {
		if slots[slot] != to.Addr {
			c.tb.Fatalf("redistest: after redis-cli --cluster reshard slot %d is owned by %s, want %s:\n%s", slot, slots[slot], to.Addr, out)
		}
	}
	return moved
}

// id answers the node id of s (CLUSTER MYID).
func (c *Cluster) id(s *Server) string {
	c.tb.Helper()
	rdb := s.Client()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id, err := rdb.ClusterMyID(ctx).Result()
	if err != nil {
		c.tb.Fatalf("redistest: CLUSTER MYID of %s: %v", s.Addr, err)
	}
	return id
}

// Stop kills every node; Start brings them back (empty, same identities).
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// Start starts every node that is not running and waits for the cluster.
func (c *Cluster) Start() {
	c.tb.Helper()
	for _, n := range c.Nodes {
		if !n.Running() {
			n.Start()
		}
	}
	c.WaitOK()
}

// Freeze stops every node with SIGSTOP; Thaw resumes them.
func (c *Cluster) Freeze() {
	c.tb.Helper()
	for _, n := range c.Nodes {
		if n.Running() {
			n.Freeze()
		}
	}
}

// Thaw resumes every node.
func (c *Cluster) Thaw() {
	for _, n := range c.Nodes {
		n.Thaw()
	}
}
