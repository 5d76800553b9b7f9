package cluster

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

func dnsCluster(name string, typ model.ClusterType, host string, port uint32, family model.DNSFamily) *model.Cluster {
	return &model.Cluster{
		Name:           name,
		Type:           typ,
		ConnectTimeout: time.Second,
		DNSFamily:      family,
		DNSRefreshRate: 20 * time.Millisecond,
		Localities: []model.LocalityEndpoints{{Endpoints: []model.Endpoint{
			{Address: model.SocketAddress{Host: host, Port: port}, Weight: 3},
		}}},
	}
}

func addrsOf(hs []*Host) []netip.Addr {
	var out []netip.Addr
	for _, h := range hs {
		out = append(out, h.Addr.Addr())
	}
	return out
}

// fakeDNS answers from a table that tests change, and records the networks asked for.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr // by network: "ip4", "ip6", "ip"
	err     error
	asked   []string
}

func (f *fakeDNS) set(network string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.answers == nil {
		f.answers = map[string][]netip.Addr{}
	}
	f.answers[network] = nil
	for _, a := range addrs {
		f.answers[network] = append(f.answers[network], netip.MustParseAddr(a))
	}
}

func (f *fakeDNS) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeDNS) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, network)
	if f.err != nil {
		return nil, f.err
	}
	a := f.answers[network]
	if len(a) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(a), nil
}

func TestStrictDNSLocalhost(t *testing.T) {
	srv := newEchoServer(t)
	loop4 := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name   string
		family model.DNSFamily
		check  func([]netip.Addr) bool
	}{
		{name: "v4 only", family: model.DNSV4Only, check: func(a []netip.Addr) bool { return slices.Equal(a, []netip.Addr{loop4}) }},
		{name: "v4 preferred", family: model.DNSV4Preferred, check: func(a []netip.Addr) bool { return slices.Equal(a, []netip.Addr{loop4}) }},
		{name: "all", family: model.DNSAll, check: func(a []netip.Addr) bool { return slices.Contains(a, loop4) }},
		{name: "auto", family: model.DNSAuto, check: func(a []netip.Addr) bool {
			// ::1 when the hosts file maps localhost to it, else 127.0.0.1.
			return len(a) == 1 && (a[0] == loop4 || a[0] == netip.IPv6Loopback())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			m := NewManager(Options{})
			defer m.Close()
			if err := m.Apply([]*model.Cluster{dnsCluster("dns", model.ClusterStrictDNS, "localhost", srv.port(), tc.family)}); err != nil {
				t.Fatal(err)
			}
			c := m.Ref("dns").Load()
			hs := c.Hosts()
			if !tc.check(addrsOf(hs)) {
				t.Fatalf("resolved %v", addrsOf(hs))
			}
			for _, h := range hs {
				if h.Weight != 3 || h.Hostname != "localhost" {
					t.Errorf("host %+v: want the endpoint's weight and the DNS name", h)
				}
			}
			if tc.family == model.DNSV4Only {
				roundTrip(t, c.Pick(0))
			}
		})
	}
}

func TestStrictDNSRefresh(t *testing.T) {
	leak.Check(t)
	dns := &fakeDNS{}
	dns.set("ip4", "10.0.0.1", "10.0.0.2")
	m := NewManager(Options{Resolver: dns})
	defer m.Close()
	if err := m.Apply([]*model.Cluster{dnsCluster("dns", model.ClusterStrictDNS, "svc.test", 80, model.DNSV4Only)}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("dns").Load()
	want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	if got := addrsOf(c.Hosts()); !slices.Equal(got, want) {
		t.Fatalf("hosts = %v, want %v", got, want)
	}
	set := c.set.Load()

	// The same addresses in another order are not a change.
	dns.set("ip4", "10.0.0.2", "10.0.0.1")
	time.Sleep(100 * time.Millisecond)
	if c.set.Load() != set {
		t.Fatal("endpoint set rebuilt for an unchanged resolution")
	}

	old1, old2 := c.Hosts()[0], c.Hosts()[1]
	dns.set("ip4", "10.0.0.2", "10.0.0.3")
	wait.For(t, "new resolution", func() bool { return c.Hosts()[1].Addr.Addr() == netip.MustParseAddr("10.0.0.3") })
	if c.Hosts()[0] != old2 {
		t.Error("host 10.0.0.2 was not kept across the refresh")
	}
	if _, err := old1.Pool.Get(context.Background()); !errors.Is(err, upstream.ErrPoolClosed) {
		t.Errorf("dropped host's pool: %v, want ErrPoolClosed", err)
	}
	if m.Ref("dns").Load() != c {
		t.Error("a DNS refresh replaced the cluster")
	}

	// Failures keep the last good set.
	set = c.set.Load()
	dns.fail(errors.New("servfail"))
	time.Sleep(100 * time.Millisecond)
	if c.set.Load() != set || len(c.Hosts()) != 2 {
		t.Error("a failed resolution changed the hosts")
	}
}

func TestDNSFamilies(t *testing.T) {
	tests := []struct {
		name      string
		family    model.DNSFamily
		v4, v6    []string
		want      []string
		wantAsked []string
	}{
		{name: "auto prefers v6", family: model.DNSAuto, v4: []string{"10.0.0.1"}, v6: []string{"fd00::1"}, want: []string{"fd00::1"}, wantAsked: []string{"ip6"}},
		{name: "auto falls back to v4", family: model.DNSAuto, v4: []string{"10.0.0.1"}, want: []string{"10.0.0.1"}, wantAsked: []string{"ip6", "ip4"}},
		{name: "v4 preferred", family: model.DNSV4Preferred, v4: []string{"10.0.0.1"}, v6: []string{"fd00::1"}, want: []string{"10.0.0.1"}, wantAsked: []string{"ip4"}},
		{name: "v4 preferred falls back", family: model.DNSV4Preferred, v6: []string{"fd00::1"}, want: []string{"fd00::1"}, wantAsked: []string{"ip4", "ip6"}},
		{name: "v6 only", family: model.DNSV6Only, v4: []string{"10.0.0.1"}, v6: []string{"fd00::1"}, want: []string{"fd00::1"}, wantAsked: []string{"ip6"}},
		{name: "all", family: model.DNSAll, v4: []string{"10.0.0.1"}, v6: []string{"fd00::1"}, want: []string{"10.0.0.1", "fd00::1"}, wantAsked: []string{"ip"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dns := &fakeDNS{}
			dns.set("ip4", tc.v4...)
			dns.set("ip6", tc.v6...)
			dns.set("ip", append(slices.Clone(tc.v4), tc.v6...)...)
			got, err := resolve(context.Background(), dns, "svc.test", tc.family)
			if err != nil {
				t.Fatal(err)
			}
			var want []netip.Addr
			for _, a := range tc.want {
				want = append(want, netip.MustParseAddr(a))
			}
			if !slices.Equal(got, want) {
				t.Errorf("resolved %v, want %v", got, want)
			}
			if !slices.Equal(dns.asked, tc.wantAsked) {
				t.Errorf("asked %v, want %v", dns.asked, tc.wantAsked)
			}
		})
	}
}

func TestLogicalDNS(t *testing.T) {
	leak.Check(t)
	a := newEchoServer(t)
	// A second loopback address, so the two resolutions lead to two servers on one port.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", itoa(a.port())))
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	b := serveEcho(t, ln)
	_ = b

	dns := &fakeDNS{}
	dns.set("ip4", "127.0.0.1", "127.0.0.2")
	m := NewManager(Options{Resolver: dns})
	defer m.Close()
	if err := m.Apply([]*model.Cluster{dnsCluster("logical", model.ClusterLogicalDNS, "svc.test", a.port(), model.DNSV4Only)}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("logical").Load()
	hs := c.Hosts()
	if len(hs) != 1 || hs[0].Address != "127.0.0.1:"+itoa(a.port()) {
		t.Fatalf("hosts = %v, want only the first address", addrsOf(hs))
	}
	h := hs[0]
	held, err := h.Pool.Get(context.Background()) // a connection to 127.0.0.1, kept in use
	if err != nil {
		t.Fatal(err)
	}

	// Reordering the addresses behind the first is no change.
	dns.set("ip4", "127.0.0.1", "127.0.0.3")
	time.Sleep(100 * time.Millisecond)
	if c.Hosts()[0] != h {
		t.Fatal("host rebuilt though the first address did not change")
	}

	dns.set("ip4", "127.0.0.2")
	wait.For(t, "new address", func() bool { return c.Hosts()[0].Address == "127.0.0.2:"+itoa(a.port()) })
	nh := c.Hosts()[0]
	if nh.Pool != h.Pool {
		t.Fatal("logical host lost its pool across a re-resolution")
	}
	if nh.Pool.Addr() != nh.Address {
		t.Errorf("pool dials %s, want %s", nh.Pool.Addr(), nh.Address)
	}
	conn := roundTrip(t, nh) // a new connection: the held one is in use
	if got := conn.RemoteAddr().(*net.TCPAddr).IP.String(); got != "127.0.0.2" {
		t.Errorf("new connection went to %s, want the latest resolution", got)
	}
	h.Pool.Put(held, true) // the older connection stays usable
}

func TestDNSWarmFailureThenRecovery(t *testing.T) {
	leak.Check(t)
	dns := &fakeDNS{}
	dns.fail(errors.New("servfail"))
	m := NewManager(Options{Resolver: dns, DNSWarmTimeout: 100 * time.Millisecond})
	defer m.Close()
	if err := m.Apply([]*model.Cluster{dnsCluster("dns", model.ClusterStrictDNS, "svc.test", 80, model.DNSV4Only)}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("dns").Load()
	if c.Pick(0) != nil {
		t.Fatal("hosts without a resolution")
	}
	dns.fail(nil)
	dns.set("ip4", "10.0.0.9")
	wait.For(t, "first resolution", func() bool { return c.Pick(0) != nil })
}

func TestDNSClusterRebuildKeepsResolution(t *testing.T) {
	leak.Check(t)
	dns := &fakeDNS{}
	dns.set("ip4", "10.0.0.1")
	m := NewManager(Options{Resolver: dns, DNSWarmTimeout: 50 * time.Millisecond})
	defer m.Close()
	mc := dnsCluster("dns", model.ClusterStrictDNS, "svc.test", 80, model.DNSV4Only)
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	dns.fail(errors.New("servfail"))
	mc2 := dnsCluster("dns", model.ClusterStrictDNS, "svc.test", 80, model.DNSV4Only)
	mc2.ConnectTimeout = 2 * time.Second
	if err := m.Apply([]*model.Cluster{mc2}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("dns").Load()
	if c.Model != mc2 {
		t.Fatal("cluster not rebuilt")
	}
	if hs := c.Hosts(); len(hs) != 1 || hs[0].Address != "10.0.0.1:80" {
		t.Errorf("rebuilt DNS cluster hosts = %v, want the previous resolution", addrsOf(hs))
	}
}

func TestManagerCloseStopsDNS(t *testing.T) {
	leak.Check(t)
	dns := &fakeDNS{}
	dns.set("ip4", "10.0.0.1")
	m := NewManager(Options{Resolver: dns})
	var cs []*model.Cluster
	for _, name := range []string{"a", "b", "c"} {
		cs = append(cs, dnsCluster(name, model.ClusterStrictDNS, "svc.test", 80, model.DNSV4Only))
	}
	cs = append(cs, staticCluster("s", 80))
	if err := m.Apply(cs); err != nil {
		t.Fatal(err)
	}
	ref := m.Ref("a")
	m.Close()
	if ref.Load() != nil {
		t.Error("Close left a cluster published")
	}
	if err := m.Apply(cs); err == nil {
		t.Error("Apply after Close: want an error")
	}
	m.Close()
}
