package cluster

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Resolver looks up the addresses of a host name. network is "ip4", "ip6" or "ip", as for
// net.Resolver.LookupNetIP, which *net.Resolver implements.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// LookupNetIP calls f.
func (f ResolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

var _ Resolver = (*net.Resolver)(nil)

// dnsState is a DNS cluster's resolution targets, one per endpoint. Guarded by Cluster.mu.
type dnsState struct {
	logical bool
	family  model.DNSFamily
	targets []dnsTarget
}

type dnsTarget struct {
	name     string
	port     uint16
	weight   uint32
	hostname string
	priority uint32
	locality Locality
	addrs    []netip.Addr // last good resolution; sorted for STRICT_DNS, resolver order for LOGICAL_DNS
}

func newDNSState(m *model.Cluster) *dnsState {
	d := &dnsState{logical: m.Type == model.ClusterLogicalDNS, family: m.DNSFamily}
	for _, l := range m.Localities {
		for _, e := range l.Endpoints {
			d.targets = append(d.targets, dnsTarget{
				name:     e.Address.Host,
				port:     uint16(e.Address.Port),
				weight:   e.Weight,
				hostname: e.Hostname,
				priority: l.Priority,
				locality: Locality{l.Region, l.Zone, l.SubZone},
			})
			if d.logical {
				// LOGICAL_DNS has exactly one endpoint (Envoy rejects more).
				return d
			}
		}
	}
	return d
}

// sameTargets reports whether d and o resolve the same names the same way, so that o's
// last resolution can seed d when a cluster is rebuilt for an unrelated change.
func (d *dnsState) sameTargets(o *dnsState) bool {
	if d.logical != o.logical || d.family != o.family || len(d.targets) != len(o.targets) {
		return false
	}
	for i := range d.targets {
		if d.targets[i].name != o.targets[i].name {
			return false
		}
	}
	return true
}

// specs lists the hosts of the current resolution: for STRICT_DNS every address of every
// endpoint, for LOGICAL_DNS one host at the first address, whose pool follows the latest
// resolution.
func (d *dnsState) specs() []hostSpec {
	var out []hostSpec
	for _, t := range d.targets {
		addrs := t.addrs
		if d.logical && len(addrs) > 1 {
			addrs = addrs[:1]
		}
		for _, a := range addrs {
			ap := netip.AddrPortFrom(a, t.port)
			s := hostSpec{
				key:      ap.String(),
				address:  ap.String(),
				addr:     ap,
				weight:   t.weight,
				hostname: t.hostname,
				priority: t.priority,
				locality: t.locality,
				healthy:  true,
			}
			if s.hostname == "" {
				s.hostname = t.name
			}
			if d.logical {
				s.key = "logical:" + net.JoinHostPort(t.name, strconv.Itoa(int(t.port)))
			}
			out = append(out, s)
		}
	}
	return out
}

// refreshDNS resolves every target and, if any address changed, publishes a new endpoint
// set. A failed lookup keeps that target's last good addresses.
func (c *Cluster) refreshDNS(ctx context.Context, timeout time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	family, logical := c.dns.family, c.dns.logical
	names := make([]string, len(c.dns.targets))
	for i, t := range c.dns.targets {
		names[i] = t.name
	}
	c.mu.Unlock()

	results := make([][]netip.Addr, len(names))
	for i, name := range names {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		addrs, err := resolve(lctx, c.resolver, name, family)
		cancel()
		if err != nil {
			c.log.Warn("dns resolution failed; keeping the last addresses", "host", name, "error", err)
			continue
		}
		if !logical {
			slices.SortFunc(addrs, netip.Addr.Compare)
			addrs = slices.Compact(addrs)
		}
		results[i] = addrs
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	changed := false
	for i, addrs := range results {
		t := &c.dns.targets[i]
		if addrs == nil {
			continue
		}
		same := slices.Equal(t.addrs, addrs)
		if logical && len(t.addrs) > 0 {
			// Only the first address is used; another order of the rest is no change.
			same = t.addrs[0] == addrs[0]
		}
		if !same {
			t.addrs = addrs
			changed = true
		}
	}
	if changed {
		c.setHostsLocked(c.dns.specs())
	}
}

// resolve looks name up as dns_lookup_family says. An IP literal resolves to itself.
func resolve(ctx context.Context, r Resolver, name string, family model.DNSFamily) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(name); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	switch family {
	case model.DNSV4Only:
		return lookup(ctx, r, "ip4", name)
	case model.DNSV6Only:
		return lookup(ctx, r, "ip6", name)
	case model.DNSAll:
		return lookup(ctx, r, "ip", name)
	case model.DNSV4Preferred:
		return lookupFallback(ctx, r, "ip4", "ip6", name)
	default: // AUTO: IPv6 first, then IPv4
		return lookupFallback(ctx, r, "ip6", "ip4", name)
	}
}

func lookupFallback(ctx context.Context, r Resolver, first, second, name string) ([]netip.Addr, error) {
	addrs, err := lookup(ctx, r, first, name)
	if err == nil {
		return addrs, nil
	}
	addrs, err2 := lookup(ctx, r, second, name)
	if err2 == nil {
		return addrs, nil
	}
	return nil, errors.Join(err, err2)
}

var errNoAddresses = errors.New("no addresses")

func lookup(ctx context.Context, r Resolver, network, name string) ([]netip.Addr, error) {
	addrs, err := r.LookupNetIP(ctx, network, name)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		// A resolver asked for one family may still return the other (a v4-mapped
		// answer to an AAAA query, hosts-file entries); keep only what was asked for.
		if (network == "ip4" && !a.Is4()) || (network == "ip6" && !a.Is6()) {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: errNoAddresses.Error(), Name: name, IsNotFound: true}
	}
	return out, nil
}

// runDNS refreshes the cluster's resolution every rate until ctx is canceled. The rate is
// dns_refresh_rate: net.Resolver does not expose record TTLs, so respect_dns_ttl has no
// effect.
func (c *Cluster) runDNS(ctx context.Context, rate, timeout time.Duration) {
	defer close(c.done)
	t := time.NewTimer(rate)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.refreshDNS(ctx, timeout)
		t.Reset(rate)
	}
}
