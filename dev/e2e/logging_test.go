package e2e_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oshirase/oshirase/dev/gqlws"
	"github.com/oshirase/oshirase/dev/harness"
)

// At the default level (info) neither service writes a line per publish or
// per delivery: 100 notices to two subscribers on both subprotocols add
// almost nothing to either log. (At debug they may; the other tests run
// at debug.)
func TestNothingLoggedPerDelivery(t *testing.T) {
	r := harness.StartRedis(t)
	pub := harness.StartPub(t, r, "LOG_LEVEL=info")
	sub := harness.StartSub(t, r, "LOG_LEVEL=info")
	var clients []*gqlws.Client
	for i, proto := range []string{gqlws.TransportWS, gqlws.LegacyWS} {
		c := connect(t, sub, proto)
		subscribe(t, c, "1", fmt.Sprint("quiet", i))
		clients = append(clients, c)
	}
	for u, c := range clients {
		user := fmt.Sprint("quiet", u)
		eventually(t, 20*time.Second, user+" subscribed", func() bool { return send(t, pub, user, "probe") == 1 })
		drain(c)
	}
	lines := func(s *harness.Service) int { return strings.Count(s.Log(), "\n") }
	pubBefore, subBefore := lines(pub), lines(sub)
	const n = 50
	for i := range n {
		for u, c := range clients {
			text := fmt.Sprintf("notice %d", i)
			if got := send(t, pub, fmt.Sprint("quiet", u), text); got != 1 {
				t.Fatalf("receivedUsers = %d", got)
			}
			expectNotice(t, c, text)
		}
	}
	if grew := lines(pub) - pubBefore; grew > 5 {
		t.Errorf("pub logged %d lines for %d publishes at info:\n%s", grew, 2*n, pub.Log())
	}
	if grew := lines(sub) - subBefore; grew > 5 {
		t.Errorf("sub logged %d lines for %d deliveries at info:\n%s", grew, 2*n, sub.Log())
	}
}
