package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "oshirase"

// Sentinel is a Sentinel-managed Redis of the test's own: a master, a
// replica and three sentinels (quorum 2), with short timeouts: a master
// silent for a second is failed over.
type Sentinel struct {
	tb        testing.TB
	Data      []*Server // the master and the replica, in no particular order after a failover
	Sentinels []*Server
}

// StartSentinel starts the deployment and waits until every sentinel knows
// the master and its replica. t.Cleanup kills every process.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	s := &Sentinel{tb: tb}
	master := &Server{Port: FreePort(tb), tb: tb}
	master.Addr = fmt.Sprintf("127.0.0.1:%d", master.Port)
	master.Start()
	tb.Cleanup(master.Stop)
	replica := &Server{Port: FreePort(tb), tb: tb}
	replica.Addr = fmt.Sprintf("127.0.0.1:%d", replica.Port)
	replica.extra = []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}
	replica.Start()
	tb.Cleanup(replica.Stop)
	s.Data = []*Server{master, replica}
	for range 3 {
		sn := &Server{Port: FreePort(tb), tb: tb}
		sn.Addr = fmt.Sprintf("127.0.0.1:%d", sn.Port)
		dir := tb.TempDir()
		sn.conf = filepath.Join(dir, "sentinel.conf")
		conf := fmt.Sprintf("dir %s\nsentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 2000\nsentinel failover-timeout %s 4000\nsentinel parallel-syncs %s 1\n",
			dir, MasterName, master.Port, MasterName, MasterName, MasterName)
		if err := os.WriteFile(sn.conf, []byte(conf), 0o600); err != nil {
			tb.Fatal(err)
		}
		sn.extra = []string{"--sentinel"}
		sn.Start()
		tb.Cleanup(sn.Stop)
		s.Sentinels = append(s.Sentinels, sn)
	}
	s.waitReplicaKnown()
	return s
}

// SentinelAddrs are the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		out[i] = sn.Addr
	}
	return out
}

// Client returns a new failover client (go-redis asks the sentinels for
// the master), honouring its callers' deadlines as the services' do.
func (s *Sentinel) Client() *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: MasterName, SentinelAddrs: s.SentinelAddrs(), MaxRetries: -1, ContextTimeoutEnabled: true,
	})
}

// masterAddr is the master's address as the first answering sentinel says.
func (s *Sentinel) masterAddr() string {
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		cancel()
		sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1])
		}
	}
	return ""
}

// Master returns the data node the sentinels name master now.
func (s *Sentinel) Master() *Server {
	s.tb.Helper()
	addr := s.masterAddr()
	for _, d := range s.Data {
		if d.Addr == addr {
			return d
		}
	}
	s.tb.Fatalf("redistest: sentinels name master %q, not one of ours", addr)
	return nil
}

// waitReplicaKnown waits until every sentinel lists the replica as up
// (so that a failover can promote it).
func (s *Sentinel) waitReplicaKnown() {
	s.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, sn := range s.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			reps, err := sc.Replicas(ctx, MasterName).Result()
			sents, err2 := sc.Sentinels(ctx, MasterName).Result()
			cancel()
			sc.Close()
			if err != nil || err2 != nil || len(reps) != 1 || len(sents) != len(s.Sentinels)-1 || reps[0]["flags"] != "slave" || reps[0]["master-link-status"] != "ok" {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatal("redistest: the sentinels did not learn the replica and each other within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// KillMaster kills the master (SIGKILL), waits until the sentinels have
// promoted the replica and it answers as master, and returns it. The old
// master stays down until StartStopped.
func (s *Sentinel) KillMaster() *Server {
	s.tb.Helper()
	old := s.Master()
	old.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if addr := s.masterAddr(); addr != "" && addr != old.Addr {
			for _, d := range s.Data {
				if d.Addr == addr && role(d) == "master" {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: the sentinels did not fail %s over within 30s", old.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func role(s *Server) string {
	c := s.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(r) == 0 {
		return ""
	}
	v, _ := r[0].(string)
	return v
}

// StartStopped starts the data nodes that are not running (a killed master
// comes back as a master until the sentinels make it a replica).
func (s *Sentinel) StartStopped() {
	s.tb.Helper()
	for _, d := range s.Data {
		if !d.Running() {
			d.Start()
		}
	}
}

// Stop kills the data nodes (the sentinels keep running); Start brings them
// back, empty, and waits until the sentinels see the replica again.
func (s *Sentinel) Stop() {
	for _, d := range s.Data {
		d.Stop()
	}
}

// Start restarts the data nodes: the master (as the sentinels name it) first.
func (s *Sentinel) Start() {
	s.tb.Helper()
	s.StartStopped()
	s.waitReplicaKnown()
}

// Freeze stops every process (data nodes and sentinels) with SIGSTOP;
// Thaw resumes them.
func (s *Sentinel) Freeze() {
	s.tb.Helper()
	for _, d := range append(append([]*Server(nil), s.Data...), s.Sentinels...) {
		if d.Running() {
			d.Freeze()
		}
	}
}

// Thaw resumes every process.
func (s *Sentinel) Thaw() {
	for _, d := range append(append([]*Server(nil), s.Data...), s.Sentinels...) {
		d.Thaw()
	}
}
