package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the peers (TRUSTED_PROXIES) whose X-Forwarded-For header is
// believed: a load balancer or nginx in front of the service.
type Proxies []netip.Prefix

// ParseProxies reads CIDRs ("10.0.0.0/8") or single addresses ("10.0.0.1").
func ParseProxies(list []string) (Proxies, error) {
	var out Proxies
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	for _, pre := range p {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address a request came from, as a rate-limit key: the
// TCP peer, or — when the peer is a trusted proxy — the nearest address in
// X-Forwarded-For that is not a trusted proxy (read from the right: each
// proxy appends the address it saw, so only the entries our own proxies
// appended can be believed; a client may put anything on the left). An
// IPv6 client is keyed by its /64, since one host commonly holds a whole
// /64.
func (p Proxies) ClientAddr(r *http.Request) string {
	peer, ok := parseHostPort(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	client := peer
	if len(p) > 0 && p.trusted(peer) {
		hops := forwardedFor(r.Header)
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(hops[i])
			if err != nil {
				break // garbage: the last hop we could read is as far as we know
			}
			client = a.Unmap()
			if !p.trusted(client) {
				break
			}
		}
	}
	return key(client)
}

func key(a netip.Addr) string {
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

func parseHostPort(s string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedFor is every X-Forwarded-For entry, over every such header, in
// order.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				hops = append(hops, s)
			}
		}
	}
	return hops
}
