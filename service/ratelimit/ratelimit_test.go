package ratelimit

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestKeyedBurstThenRefusal(t *testing.T) {
	k := NewKeyed(1, 3, 0) // one a second: nothing refills within the test's first steps
	for i := range 3 {
		if ok, _ := k.Allow("a", 1); !ok {
			t.Fatalf("take %d of a burst of 3 refused", i+1)
		}
	}
	ok, retry := k.Allow("a", 1)
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("4th take: ok=%v retry=%s, want refused with 0 < retry <= 1s", ok, retry)
	}
	// Another key is unaffected by a's empty bucket.
	if ok, _ := k.Allow("b", 3); !ok {
		t.Fatal("b refused while a is at its limit")
	}
	// More than the burst at once is never possible.
	if ok, retry := k.Allow("c", 4); ok || retry != -1 {
		t.Fatalf("4 of a burst of 3: ok=%v retry=%s, want refused with -1", ok, retry)
	}
	// A refused take costs nothing: the next token still comes on time.
	k2 := NewKeyed(20, 1, 0)
	k2.Allow("a", 1)
	for range 5 {
		k2.Allow("a", 1)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := k2.Allow("a", 1); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a bucket refilling 20/s gave no token in 5s after refusals")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The map stays bounded by two generations however many keys come, and a
// key seen recently keeps its (empty) bucket across a rotation.
func TestKeyedIsBounded(t *testing.T) {
	k := NewKeyed(0.001, 1, 100)
	k.Allow("hot", 1)
	for i := range 10_000 {
		k.Allow(fmt.Sprint("k", i), 1)
		if i%50 == 0 {
			if ok, _ := k.Allow("hot", 1); ok { // touched often: never forgotten
				t.Fatalf("after %d other keys, hot got a fresh bucket", i)
			}
		}
		if n := k.Keys(); n > 200 {
			t.Fatalf("%d keys remembered, want at most 200", n)
		}
	}
	// A key idle through a whole generation is forgotten: a fresh bucket.
	k.Allow("idle", 1)
	for i := range 250 {
		k.Allow(fmt.Sprint("x", i), 1)
	}
	if ok, _ := k.Allow("idle", 1); !ok {
		t.Fatal("a key idle for two generations still had its empty bucket")
	}
}

func TestKeyedConcurrent(t *testing.T) {
	k := NewKeyed(0.001, 10, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if ok, _ := k.Allow("shared", 1); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				k.Allow(fmt.Sprint(g), 1)
			}
		}()
	}
	wg.Wait()
	if allowed != 10 {
		t.Fatalf("%d takes allowed from a bucket of 10 that does not refill in time, want 10", allowed)
	}
}

func TestRetrySeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {-1, 1}} {
		if got := RetrySeconds(tc.d); got != tc.want {
			t.Errorf("RetrySeconds(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
	h := http.Header{}
	SetRetryAfter(h, 2500*time.Millisecond)
	if h.Get("Retry-After") != "3" {
		t.Fatalf("Retry-After %q, want 3", h.Get("Retry-After"))
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct client", "203.0.113.7:5555", nil, "203.0.113.7"},
		{"direct client lying in XFF", "203.0.113.7:5555", []string{"1.1.1.1"}, "203.0.113.7"},
		{"through a trusted proxy", "10.1.2.3:80", []string{"203.0.113.7"}, "203.0.113.7"},
		{"client spoofing the left of XFF", "10.1.2.3:80", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},
		{"two trusted proxies", "10.1.2.3:80", []string{"203.0.113.7, 192.168.1.1"}, "203.0.113.7"},
		{"two headers", "10.1.2.3:80", []string{"6.6.6.6", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"},
		{"only proxies", "10.1.2.3:80", []string{"10.4.4.4"}, "10.4.4.4"},
		{"garbage hop", "10.1.2.3:80", []string{"203.0.113.7, junk"}, "10.1.2.3"},
		{"trusted proxy without XFF", "192.168.1.1:80", nil, "192.168.1.1"},
		{"IPv6 client keyed by /64", "[2001:db8:1:2:aaaa::1]:443", nil, "2001:db8:1:2::/64"},
		{"IPv6 through an IPv6 proxy", "[fd00::1]:80", []string{"2001:db8:1:2::9"}, "2001:db8:1:2::/64"},
		{"IPv4-mapped peer", "[::ffff:203.0.113.7]:1", nil, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := proxies.ClientAddr(r); got != tc.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	// Without TRUSTED_PROXIES nobody's header is believed.
	r := &http.Request{RemoteAddr: "10.1.2.3:80", Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
	if got := Proxies(nil).ClientAddr(r); got != "10.1.2.3" {
		t.Fatalf("no proxies: %q", got)
	}
	if _, err := ParseProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("10.0.0.0/33 accepted")
	}
	if _, err := ParseProxies([]string{"nginx"}); err == nil {
		t.Fatal("a host name accepted")
	}
}
