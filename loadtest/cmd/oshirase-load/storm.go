package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The reconnect storm's helpers (phase storm:BEHIND, with -resume and
// -publish bus: oshirase's publish script, so that notices are recorded in
// their histories).

// fetchTo saves what url answers in file.
func fetchTo(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// redisCPU is Redis's CPU time so far: INFO cpu's used_cpu_sys +
// used_cpu_user, in seconds; on a Redis Cluster the sum over every node
// the client knows (masters and replicas).
func redisCPU(ctx context.Context, c redis.UniversalClient) (float64, error) {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return 0, fmt.Errorf("redis INFO cpu: %w", err)
		}
		return parseRedisCPU(info)
	}
	var mu sync.Mutex
	var sum float64
	err := cc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		info, err := node.Info(ctx, "cpu").Result()
		if err != nil {
			return fmt.Errorf("redis INFO cpu on %s: %w", node.Options().Addr, err)
		}
		v, err := parseRedisCPU(info)
		if err != nil {
			return err
		}
		mu.Lock()
		sum += v
		mu.Unlock()
		return nil
	})
	return sum, err
}

func parseRedisCPU(info string) (float64, error) {
	var sum float64
	found := 0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("redis INFO cpu: %s: %w", k, err)
			}
			sum += f
			found++
		}
	}
	if found != 2 {
		return 0, fmt.Errorf("redis INFO cpu: no used_cpu_sys/used_cpu_user in %q", info)
	}
	return sum, nil
}
