package rbac

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestIPSet(t *testing.T) {
	set := newIPSet([]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("10.1.0.0/16"), // inside the first
		netip.MustParsePrefix("192.168.1.0/24"),
		netip.MustParsePrefix("192.168.2.0/24"), // adjacent: merged
		netip.MustParsePrefix("203.0.113.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::1/128"),
	})
	if len(set.v4) != 3 || len(set.v6) != 2 {
		t.Fatalf("intervals %v %v, want 3 IPv4 and 2 IPv6", set.v4, set.v6)
	}
	for _, tc := range []struct {
		name string
		addr string
		want bool
	}{
		{name: "inside /8", addr: "10.200.3.4", want: true},
		{name: "first of /8", addr: "10.0.0.0", want: true},
		{name: "last of /8", addr: "10.255.255.255", want: true},
		{name: "after /8", addr: "11.0.0.0", want: false},
		{name: "merged neighbour", addr: "192.168.2.200", want: true},
		{name: "gap", addr: "192.168.3.0", want: false},
		{name: "host", addr: "203.0.113.7", want: true},
		{name: "next to host", addr: "203.0.113.8", want: false},
		{name: "IPv4-mapped IPv6 is IPv4", addr: "::ffff:10.0.0.1", want: true},
		{name: "IPv6 inside", addr: "2001:db8:1::1", want: true},
		{name: "IPv6 outside", addr: "2001:db9::", want: false},
		{name: "IPv6 loopback", addr: "::1", want: true},
		{name: "IPv6 next to loopback", addr: "::2", want: false},
		{name: "invalid address", addr: "", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a netip.Addr
			if tc.addr != "" {
				a = netip.MustParseAddr(tc.addr)
			}
			if got := set.contains(a); got != tc.want {
				t.Errorf("contains(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}

// TestIPSetAgainstPrefixes compares the interval search with testing every prefix, over random
// sets and addresses.
func TestIPSetAgainstPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		var ps []netip.Prefix
		for i := 0; i < 1+r.IntN(40); i++ {
			a := netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			ps = append(ps, netip.PrefixFrom(a, 8+r.IntN(25)).Masked())
		}
		set := newIPSet(ps)
		for i := 0; i < 500; i++ {
			a := netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := set.contains(a); got != want {
				t.Fatalf("round %d: contains(%s) = %v, want %v (prefixes %s)", round, a, got, want, fmt.Sprint(ps))
			}
		}
	}
}
