package rbac

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ipSet is a set of CIDR ranges compiled into sorted, merged, disjoint intervals, one list per
// address family, searched in O(log n): a policy listing a hundred source ranges costs a few
// comparisons, not a hundred prefix checks.
type ipSet struct {
	v4 []span4
	v6 []span6
}

type span4 struct{ lo, hi uint32 }

type span6 struct{ lo, hi netip.Addr }

// parseCIDR checks an Envoy CidrRange. Bits past the prefix are ignored, as Envoy does.
func parseCIDR(c *corev3.CidrRange) (netip.Prefix, error) {
	a, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address_prefix: %q is not an IP address", c.GetAddressPrefix())
	}
	a = a.Unmap()
	n := int(c.GetPrefixLen().GetValue())
	if n > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("prefix_len: %d is longer than the address (%d bits)", n, a.BitLen())
	}
	return netip.PrefixFrom(a, n).Masked(), nil
}

func newIPSet(prefixes []netip.Prefix) *ipSet {
	s := &ipSet{}
	for _, p := range prefixes {
		lo := p.Addr()
		if lo.Is4() {
			b := lo.As4()
			l := binary.BigEndian.Uint32(b[:])
			h := l | (uint32(1)<<(32-p.Bits()) - 1)
			if p.Bits() == 0 {
				h = ^uint32(0)
			}
			s.v4 = append(s.v4, span4{l, h})
			continue
		}
		s.v6 = append(s.v6, span6{lo, lastAddr(p)})
	}
	slices.SortFunc(s.v4, func(a, b span4) int { return cmpU32(a.lo, b.lo) })
	slices.SortFunc(s.v6, func(a, b span6) int { return a.lo.Compare(b.lo) })
	// Merge overlapping and adjacent intervals so the search needs one comparison per level.
	m4 := s.v4[:0]
	for _, sp := range s.v4 {
		if n := len(m4); n > 0 && (sp.lo <= m4[n-1].hi || m4[n-1].hi != ^uint32(0) && sp.lo == m4[n-1].hi+1) {
			m4[n-1].hi = max(m4[n-1].hi, sp.hi)
			continue
		}
		m4 = append(m4, sp)
	}
	s.v4 = m4
	m6 := s.v6[:0]
	for _, sp := range s.v6 {
		if n := len(m6); n > 0 && (sp.lo.Compare(m6[n-1].hi) <= 0 || m6[n-1].hi.Next() == sp.lo) {
			if sp.hi.Compare(m6[n-1].hi) > 0 {
				m6[n-1].hi = sp.hi
			}
			continue
		}
		m6 = append(m6, sp)
	}
	s.v6 = m6
	return s
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lastAddr is the highest address of an IPv6 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(b)
}

// contains reports whether a (IPv4-mapped IPv6 taken as IPv4) is in the set.
func (s *ipSet) contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		v := binary.BigEndian.Uint32(b[:])
		lo, hi := 0, len(s.v4)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			switch {
			case v < s.v4[m].lo:
				hi = m
			case v > s.v4[m].hi:
				lo = m + 1
			default:
				return true
			}
		}
		return false
	}
	if !a.IsValid() {
		return false
	}
	lo, hi := 0, len(s.v6)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch {
		case a.Compare(s.v6[m].lo) < 0:
			hi = m
		case a.Compare(s.v6[m].hi) > 0:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}
