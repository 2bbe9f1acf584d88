package redistest

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePort returns a TCP port that is free now, chosen below the kernel's
// ephemeral range: a port that listen(":0") hands out can be taken a moment
// later by any outgoing connection of a test running in parallel, and the
// server started on it then fails with "address already in use".
func FreePort(tb testing.TB) int {
	tb.Helper()
	low := ephemeralLow()
	for range 1000 {
		port := 10000 + rand.IntN(low-10000)
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	tb.Fatal("redistest: no free port found")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	return low
}

// freeClusterPort returns a port free now whose cluster bus port (the
// port + 10000, as Redis Cluster uses) is free too, and below the
// ephemeral range like the port itself: a node stopped and started again
// must find both still free.
func freeClusterPort(tb testing.TB) int {
	tb.Helper()
	low := ephemeralLow()
	for range 1000 {
		port := FreePort(tb)
		if port+10000 >= low {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	tb.Fatal("redistest: no free cluster port found")
	return 0
}
