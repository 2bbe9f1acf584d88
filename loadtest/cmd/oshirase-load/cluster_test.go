package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oshirase/oshirase/bus/redistest"
	"github.com/oshirase/oshirase/loadtest/publish"
)

// -publish bus with -redis-cluster publishes through the cluster's publish
// script: every notice lands in its channel's history on the master that
// owns the channel's slot, spread over all three masters, and Redis's CPU
// is the sum over every node, not one node's.
func TestBusPublishesToACluster(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	ctx := context.Background()
	b, err := publish.NewBus("127.0.0.1:1", c.Addrs(), "default", 10, time.Hour, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc, ok := b.Client().(*redis.ClusterClient)
	if !ok {
		t.Fatalf("client %T, want a cluster client", b.Client())
	}
	var ns []publish.Notice
	for i := range 60 {
		ns = append(ns, publish.Notice{User: fmt.Sprintf("u%d", i), Text: fmt.Sprintf("lt:%d:%d", time.Now().UnixNano(), i)})
	}
	if _, failed, err := b.Publish(ctx, ns); failed != 0 || err != nil {
		t.Fatalf("%d of %d failed: %v", failed, len(ns), err)
	}
	withKeys := 0
	var perNode float64
	keys := func(m *redistest.Server) int64 {
		n, err := m.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var before int64
	for _, m := range c.Masters() {
		n := keys(m)
		before += n
		if n > 0 {
			withKeys++
		}
		info, err := m.Client().Info(ctx, "cpu").Result()
		if err != nil {
			t.Fatal(err)
		}
		v, err := parseRedisCPU(info)
		if err != nil {
			t.Fatal(err)
		}
		perNode += v
	}
	if withKeys != 3 {
		t.Fatalf("histories on %d of 3 masters; 60 users' channels should reach every one", withKeys)
	}
	// -publish bus-batch: the same through PublishBatch (one script per
	// channel on a cluster, pipelined per shard); 60 more users, 60 more
	// histories at least
	b.Batched(64)
	for i := range ns {
		ns[i].User = fmt.Sprintf("v%d", i)
	}
	if _, failed, err := b.Publish(ctx, ns); failed != 0 || err != nil {
		t.Fatalf("batch: %d of %d failed: %v", failed, len(ns), err)
	}
	var after int64
	for _, m := range c.Masters() {
		after += keys(m)
	}
	if after-before < 60 {
		t.Fatalf("batch: %d keys before, %d after; want 60 more histories at least", before, after)
	}
	sum, err := redisCPU(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	// CPU only grows: the sum read after the per-node reads is at least theirs
	if sum < perNode {
		t.Fatalf("cluster CPU %.3f s < the masters' %.3f s read before", sum, perNode)
	}
}
