package cluster

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// echoServer answers each line with the same line, on 127.0.0.1.
type echoServer struct{ ln net.Listener }

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	return serveEcho(t, loopback.Listen(t))
}

func serveEcho(t *testing.T, ln net.Listener) *echoServer {
	loopback.ServeListener(t, ln, func(_ context.Context, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte(line))
		}
	})
	return &echoServer{ln: ln}
}

func itoa(p uint32) string { return strconv.Itoa(int(p)) }

func (s *echoServer) port() uint32 { return uint32(s.ln.Addr().(*net.TCPAddr).Port) }

// roundTrip sends a line through a pooled connection of h and returns it to the pool.
func roundTrip(t *testing.T, h *Host) *upstream.Conn {
	t.Helper()
	c, err := h.Pool.Get(context.Background())
	if err != nil {
		t.Fatalf("Get %s: %v", h.Address, err)
	}
	if _, err := c.Write([]byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hi\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	h.Pool.Put(c, true)
	return c
}

func staticCluster(name string, ports ...uint32) *model.Cluster {
	var eps []model.Endpoint
	for _, p := range ports {
		eps = append(eps, model.Endpoint{Address: model.SocketAddress{Host: "127.0.0.1", Port: p}, Weight: 1})
	}
	return &model.Cluster{
		Name:           name,
		Type:           model.ClusterStatic,
		ConnectTimeout: time.Second,
		Localities:     []model.LocalityEndpoints{{Endpoints: eps}},
	}
}

func TestApplyAddUpdateRemove(t *testing.T) {
	leak.Check(t)
	srv := newEchoServer(t)
	m := NewManager(Options{})
	defer m.Close()

	early := m.Ref("a") // a route compiled before the cluster exists
	if early.Load() != nil {
		t.Fatal("ref filled before Apply")
	}
	a := staticCluster("a", srv.port())
	a.Source = "v1"
	b := staticCluster("b", srv.port())
	if err := m.Apply([]*model.Cluster{a, b}); err != nil {
		t.Fatal(err)
	}
	ca := early.Load()
	if ca == nil || ca.Name != "a" || m.Ref("b").Load() == nil {
		t.Fatal("clusters not published into their refs")
	}
	h := ca.Pick(0)
	if h == nil || h.Address != "127.0.0.1:"+strconv.Itoa(int(srv.port())) {
		t.Fatalf("picked %v", h)
	}
	conn := roundTrip(t, h)

	// Same config, new Source: kept as is, pooled connection included.
	a2 := staticCluster("a", srv.port())
	a2.Source = "v2"
	b2 := staticCluster("b", srv.port())
	b2.ConnectTimeout = 2 * time.Second // changed: rebuilt
	oldB := m.Ref("b").Load()
	oldBHost := oldB.Pick(0)
	if err := m.Apply([]*model.Cluster{a2, b2}); err != nil {
		t.Fatal(err)
	}
	if early.Load() != ca {
		t.Fatal("unchanged cluster was rebuilt")
	}
	if got := roundTrip(t, ca.Pick(0)); got != conn {
		t.Error("unchanged cluster's pooled connection was not reused")
	}
	nb := m.Ref("b").Load()
	if nb == oldB || nb.Model != b2 {
		t.Fatal("changed cluster not rebuilt")
	}
	if _, err := oldBHost.Pool.Get(context.Background()); !errors.Is(err, upstream.ErrPoolClosed) {
		t.Errorf("replaced cluster's pool: %v, want ErrPoolClosed", err)
	}

	// Remove a.
	if err := m.Apply([]*model.Cluster{b2}); err != nil {
		t.Fatal(err)
	}
	if early.Load() != nil {
		t.Error("removed cluster still in its ref")
	}
	if _, err := h.Pool.Get(context.Background()); !errors.Is(err, upstream.ErrPoolClosed) {
		t.Errorf("removed cluster's pool: %v, want ErrPoolClosed", err)
	}
	if got := m.Clusters(); len(got) != 1 || got[0].Name != "b" {
		t.Errorf("Clusters() = %v", got)
	}
	// Re-adding fills the same ref.
	if err := m.Apply([]*model.Cluster{a, b2}); err != nil {
		t.Fatal(err)
	}
	if early.Load() == nil {
		t.Error("re-added cluster not in the original ref")
	}
}

func TestApplyRejectsWhole(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{})
	defer m.Close()
	good := staticCluster("good", 8080)
	if err := m.Apply([]*model.Cluster{good}); err != nil {
		t.Fatal(err)
	}
	before := m.Ref("good").Load()
	tests := []struct {
		name string
		cs   []*model.Cluster
	}{
		{name: "duplicate", cs: []*model.Cluster{staticCluster("x", 1), staticCluster("x", 2)}},
		{name: "nil", cs: []*model.Cluster{nil}},
		{name: "empty name", cs: []*model.Cluster{staticCluster("", 1)}},
		{name: "bad tls", cs: []*model.Cluster{
			staticCluster("new", 1),
			{Name: "tls", TLS: &model.UpstreamTLS{TrustedCAPEM: []byte("junk")}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Apply(tc.cs); err == nil {
				t.Fatal("want an error")
			}
			if m.Ref("good").Load() != before || m.Ref("new").Load() != nil || len(m.Clusters()) != 1 {
				t.Error("a failed Apply changed the published clusters")
			}
		})
	}
}

func TestSetEndpointsReusesHosts(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{})
	defer m.Close()
	eds := &model.Cluster{Name: "eds", Type: model.ClusterEDS}
	if err := m.Apply([]*model.Cluster{eds}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("eds").Load()
	if c.Pick(0) != nil {
		t.Fatal("EDS cluster has hosts before any assignment")
	}
	ep := func(host string, w uint32) model.Endpoint {
		return model.Endpoint{Address: model.SocketAddress{Host: host, Port: 80}, Weight: w}
	}
	if err := m.SetEndpoints("eds", []model.LocalityEndpoints{{Endpoints: []model.Endpoint{ep("10.0.0.1", 1), ep("10.0.0.2", 1)}}}); err != nil {
		t.Fatal(err)
	}
	h1, h2 := c.Hosts()[0], c.Hosts()[1]
	if err := m.SetEndpoints("eds", []model.LocalityEndpoints{{Endpoints: []model.Endpoint{ep("10.0.0.1", 1), ep("10.0.0.2", 5), ep("10.0.0.3", 1)}}}); err != nil {
		t.Fatal(err)
	}
	if m.Ref("eds").Load() != c {
		t.Fatal("SetEndpoints rebuilt the cluster")
	}
	hs := c.Hosts()
	if len(hs) != 3 || hs[0] != h1 {
		t.Fatal("unchanged host was not kept")
	}
	if hs[1] == h2 || hs[1].Weight != 5 || hs[1].Pool != h2.Pool {
		t.Error("reweighted host should be new but keep its pool")
	}
	if err := m.SetEndpoints("eds", []model.LocalityEndpoints{{Endpoints: []model.Endpoint{ep("10.0.0.3", 1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Pool.Get(context.Background()); !errors.Is(err, upstream.ErrPoolClosed) {
		t.Errorf("removed host's pool: %v, want ErrPoolClosed", err)
	}

	// A changed EDS cluster keeps its endpoints until EDS sends new ones.
	eds2 := &model.Cluster{Name: "eds", Type: model.ClusterEDS, ConnectTimeout: time.Second}
	if err := m.Apply([]*model.Cluster{eds2}); err != nil {
		t.Fatal(err)
	}
	if hs := m.Ref("eds").Load().Hosts(); len(hs) != 1 || hs[0].Address != "10.0.0.3:80" {
		t.Errorf("rebuilt EDS cluster hosts = %v", hs)
	}

	if err := m.SetEndpoints("missing", nil); err == nil {
		t.Error("SetEndpoints on an unknown cluster: want an error")
	}
}

func TestHostAddresses(t *testing.T) {
	m := NewManager(Options{})
	defer m.Close()
	mc := &model.Cluster{Name: "s", Localities: []model.LocalityEndpoints{
		{Priority: 1, Region: "eu", Endpoints: []model.Endpoint{{Address: model.SocketAddress{Host: "::1", Port: 443}, Weight: 2}}},
		{Endpoints: []model.Endpoint{{Address: model.SocketAddress{Host: "127.0.0.1", Port: 80}, Weight: 1, Hostname: "web"}}},
	}}
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	hs := m.Ref("s").Load().Hosts()
	if len(hs) != 2 {
		t.Fatalf("hosts = %v", hs)
	}
	if hs[0].Address != "127.0.0.1:80" || hs[0].Hostname != "web" || hs[0].Priority != 0 {
		t.Errorf("host 0 = %+v", hs[0])
	}
	if hs[1].Address != "[::1]:443" || hs[1].Addr != netip.MustParseAddrPort("[::1]:443") || hs[1].Locality.Region != "eu" || hs[1].Weight != 2 {
		t.Errorf("host 1 = %+v", hs[1])
	}
}

func TestUseDownstreamProtocolPools(t *testing.T) {
	m := NewManager(Options{})
	defer m.Close()
	mc := staticCluster("d", 80)
	mc.Protocol = model.UpstreamUseDownstream
	h2 := staticCluster("h2", 80)
	h2.Protocol = model.UpstreamHTTP2
	if err := m.Apply([]*model.Cluster{mc, h2}); err != nil {
		t.Fatal(err)
	}
	h := m.Ref("d").Load().Pick(0)
	if h.PoolFor(false).Protocol() != upstream.HTTP1 || h.PoolFor(true).Protocol() != upstream.HTTP2 {
		t.Error("use-downstream cluster should have a pool per protocol")
	}
	h = m.Ref("h2").Load().Pick(0)
	if h.PoolFor(false).Protocol() != upstream.HTTP2 || h.H2 != nil {
		t.Error("HTTP/2 cluster should have one HTTP/2 pool")
	}
}

func TestManagerConcurrentApplyAndPick(t *testing.T) {
	leak.Check(t)
	m := NewManager(Options{})
	defer m.Close()
	ref := m.Ref("c")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c := ref.Load(); c != nil {
					if h := c.Pick(1); h != nil {
						h.Begin()
						h.End()
					}
					_ = c.Hosts()
				}
			}
		})
	}
	for i := range 200 {
		mc := staticCluster("c", uint32(8000+i%3))
		if err := m.Apply([]*model.Cluster{mc}); err != nil {
			t.Fatal(err)
		}
		m.SetEndpoints("c", mc.Localities)
	}
	close(stop)
	wg.Wait()
}

func BenchmarkApply1000Clusters(b *testing.B) {
	cs := make([]*model.Cluster, 1000)
	for i := range cs {
		cs[i] = staticCluster("c"+strconv.Itoa(i), 8000, 8001, 8002)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := NewManager(Options{})
		if err := m.Apply(cs); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
