package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// The tests below run go-control-plane's ADS server and snapshot cache as an independent
// management server, in process, and a whole data plane (Server.Run with XDSOptions) that
// serves real HTTP requests to real upstreams on loopback.

const xdsNode = "dp-1"

// mgmt is a go-control-plane management server on a fixed loopback port.
type mgmt struct {
	t     *testing.T
	addr  string
	cache cachev3.SnapshotCache
	grpc  *grpc.Server
	done  chan struct{}

	stopFunc func()

	mu    sync.Mutex
	nacks []string // error_detail messages received
	nodes []string // node ids of the first requests of streams
	ver   int
}

func startMgmt(t *testing.T, addr string) *mgmt {
	t.Helper()
	m := &mgmt{t: t, cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	cb := serverv3.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
			m.record(r.GetNode(), r.GetErrorDetail().GetMessage())
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			m.record(r.GetNode(), r.GetErrorDetail().GetMessage())
			return nil
		},
	}
	srv := serverv3.NewServer(ctx, m.cache, cb)
	m.grpc = grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(m.grpc, srv)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// The port of a stopped server may take a moment to be free again.
	wait.NoError(t, "listening on "+addr, func() error {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	m.addr = ln.Addr().String()
	go func() {
		defer close(m.done)
		m.grpc.Serve(ln)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			m.grpc.Stop()
			cancel()
			<-m.done
		})
	}
	t.Cleanup(stop)
	m.stopFunc = stop
	return m
}

func (m *mgmt) stop() { m.stopFunc() }

func (m *mgmt) record(n *corev3.Node, nack string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n != nil {
		m.nodes = append(m.nodes, n.GetId())
	}
	if nack != "" {
		m.nacks = append(m.nacks, nack)
	}
}

func (m *mgmt) nackList() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.nacks...)
}

// set publishes a snapshot of the given resources under a new version.
func (m *mgmt) set(res map[resourcev3.Type][]types.Resource) {
	m.t.Helper()
	m.mu.Lock()
	m.ver++
	v := strconv.Itoa(m.ver)
	m.mu.Unlock()
	snap, err := cachev3.NewSnapshot(v, res)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.cache.SetSnapshot(context.Background(), xdsNode, snap); err != nil {
		m.t.Fatal(err)
	}
}

// Resource builders.

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func hcmAny(t *testing.T, rds string) *anypb.Any {
	t.Helper()
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix: "ingress",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: rds, ConfigSource: ads(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func xdsListener(t *testing.T, name string, port int, rds string) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcmAny(t, rds)},
		}}}},
	}
}

// tlsListener terminates TLS with the certificate in the SDS secret certName.
func tlsListener(t *testing.T, name string, port int, rds, certName string) *listenerv3.Listener {
	l := xdsListener(t, name, port, rds)
	ctx, err := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: certName, SdsConfig: ads()}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.FilterChains[0].TransportSocket = &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
	}
	return l
}

// routes is a route table: each prefix goes to its cluster; a cluster named "direct:BODY"
// answers BODY itself.
func routes(name string, prefixToCluster ...string) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: "all", Domains: []string{"*"}}
	for i := 0; i+1 < len(prefixToCluster); i += 2 {
		r := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefixToCluster[i]}}}
		if body, ok := strings.CutPrefix(prefixToCluster[i+1], "direct:"); ok {
			r.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
				Status: 200, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
			}}
		} else {
			r.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: prefixToCluster[i+1]},
			}}
		}
		vh.Routes = append(vh.Routes, r)
	}
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh}}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(time.Second),
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
	}
}

func cla(name string, addrs ...string) *endpointv3.ClusterLoadAssignment {
	var eps []*endpointv3.LbEndpoint
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		eps = append(eps, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
			}}},
		}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}}}
}

func certSecret(t *testing.T, name, cn string) *tlsv3.Secret {
	t.Helper()
	c := certs.SelfSigned(t, cn)
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(c.CertPEM),
		PrivateKey:       inline(c.KeyPEM),
	}}}
}

// upstream is a real HTTP server answering name.
func upstream(t *testing.T, name string) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// runXDS runs a data plane fed by the management server at addr until the test ends.
func runXDS(t *testing.T, addr string, delta bool) *Server {
	t.Helper()
	s := newTestServer(t, Options{
		AdminAddress: "127.0.0.1:0",
		XDS: &XDSOptions{Address: addr, NodeID: xdsNode, Delta: delta,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond},
	})
	runUntilEnd(t, s)
	return s
}

// fetch returns "STATUS BODY" for GET url, or "error" when no response came.
func fetch(c *http.Client, url string) string {
	resp, err := c.Get(url)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.Itoa(resp.StatusCode) + " " + string(b)
}

// await polls GET url until it answers want.
func await(t *testing.T, c *http.Client, url, want string) {
	t.Helper()
	wait.NoError(t, "GET "+url, func() error {
		if got := fetch(c, url); got != want {
			return fmt.Errorf("%q, want %q", got, want)
		}
		return nil
	})
}

func protocols(t *testing.T, f func(t *testing.T, delta bool)) {
	for _, tc := range []struct {
		name  string
		delta bool
	}{{name: "sotw"}, {name: "delta", delta: true}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.delta) })
	}
}

type res = map[resourcev3.Type][]types.Resource

// TestXDSLifecycle adds, updates and removes listeners, route tables, clusters and
// endpoints, and checks each change with requests.
func TestXDSLifecycle(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		leak.Check(t)
		a, b, c := upstream(t, "A"), upstream(t, "B"), upstream(t, "C")
		m := startMgmt(t, "")
		port, port2 := freePort(t), freePort(t)
		web := fmt.Sprintf("http://127.0.0.1:%d", port)
		web2 := fmt.Sprintf("http://127.0.0.1:%d", port2)
		hc := newClient(t, false)

		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		s := runXDS(t, m.addr, delta)
		await(t, hc, web+"/", "200 A")

		// RDS update: a new route; the listener keeps its socket and connections.
		keep := newClient(t, true)
		await(t, keep, web+"/", "200 A")
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/direct", "direct:hello", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		await(t, keep, web+"/direct", "200 hello")

		// EDS update.
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/direct", "direct:hello", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", b)},
		})
		await(t, hc, web+"/", "200 B")

		// CDS add (with its endpoints), LDS add (with a second route table).
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main"), xdsListener(t, "web2", port2, "second")},
			resourcev3.RouteType:    {routes("main", "/c", "other", "/", "backend"), routes("second", "/", "direct:two")},
			resourcev3.ClusterType:  {edsCluster("backend"), edsCluster("other")},
			resourcev3.EndpointType: {cla("backend", b), cla("other", c)},
		})
		await(t, hc, web+"/c", "200 C")
		await(t, hc, web2+"/", "200 two")

		// CDS and LDS removals: the route to the removed cluster answers 503 (Envoy's
		// cluster_not_found), the removed listener refuses connections.
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/c", "other", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", b)},
		})
		await(t, hc, web+"/c", "503 ")
		await(t, hc, web2+"/", "error")
		await(t, hc, web+"/", "200 B")
		if got := clusterNames(s); strings.Join(got, ",") != "backend" {
			t.Errorf("clusters %v, want [backend]", got)
		}
		if len(m.nackList()) != 0 {
			t.Errorf("NACKs: %q", m.nackList())
		}
		m.mu.Lock()
		nodes := m.nodes
		m.mu.Unlock()
		if len(nodes) == 0 || nodes[0] != xdsNode {
			t.Errorf("node ids on first requests %q, want %q", nodes, xdsNode)
		}
	})
}

// TestXDSNack sends a listener with an unsupported field: the data plane refuses it with an
// error_detail naming the resource and field, and keeps serving the previous configuration.
func TestXDSNack(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		leak.Check(t)
		a := upstream(t, "A")
		m := startMgmt(t, "")
		port := freePort(t)
		web := fmt.Sprintf("http://127.0.0.1:%d", port)
		hc := newClient(t, false)
		good := res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		}
		m.set(good)
		runXDS(t, m.addr, delta)
		await(t, hc, web+"/", "200 A")

		bad := xdsListener(t, "web", port, "main")
		bad.TcpFastOpenQueueLength = wrapperspb.UInt32(5)
		m.set(res{
			resourcev3.ListenerType: {bad},
			resourcev3.RouteType:    {routes("main", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		want := `listener "web": tcp_fast_open_queue_length: not supported`
		wait.For(t, "the listener is NACKed", func() bool {
			for _, n := range m.nackList() {
				if strings.Contains(n, want) {
					return true
				}
			}
			return false
		})
		if got := fetch(hc, web+"/"); got != "200 A" {
			t.Errorf("after the NACK: %q, want the previous config's %q", got, "200 A")
		}
		// A good config after the bad one is applied.
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/", "direct:fixed")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		await(t, hc, web+"/", "200 fixed")
	})
}

// TestXDSWarming checks that a listener is bound only once its route table arrives and that
// a cluster serves only once its endpoints arrive.
func TestXDSWarming(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		leak.Check(t)
		a := upstream(t, "A")
		m := startMgmt(t, "")
		port, port2 := freePort(t), freePort(t)
		web := fmt.Sprintf("http://127.0.0.1:%d", port)
		web2 := fmt.Sprintf("http://127.0.0.1:%d", port2)
		hc := newClient(t, false)
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main"), xdsListener(t, "late", port2, "missing")},
			resourcev3.RouteType:    {routes("main", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
		})
		s := runXDS(t, m.addr, delta)
		// The cluster has no endpoints yet: it is not in force, so its route answers 503
		// (cluster_not_found).
		await(t, hc, web+"/", "503 ")
		if addrOf(s, "late") != "" {
			t.Fatal("listener late bound before its route table arrived")
		}
		if got := fetch(hc, web2+"/"); got != "error" {
			t.Fatalf("listener late answered %q before its route table arrived", got)
		}
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main"), xdsListener(t, "late", port2, "missing")},
			resourcev3.RouteType:    {routes("main", "/", "backend"), routes("missing", "/", "direct:late")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		await(t, hc, web+"/", "200 A")
		await(t, hc, web2+"/", "200 late")
	})
}

// TestXDSServerRestart stops the management server: the data plane keeps serving; a new
// server on the same address with a new snapshot is reconnected to and applied.
func TestXDSServerRestart(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		leak.Check(t)
		a, b := upstream(t, "A"), upstream(t, "B")
		m := startMgmt(t, "")
		port := freePort(t)
		web := fmt.Sprintf("http://127.0.0.1:%d", port)
		hc := newClient(t, false)
		m.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", a)},
		})
		runXDS(t, m.addr, delta)
		await(t, hc, web+"/", "200 A")

		m.stop()
		for range 20 {
			if got := fetch(hc, web+"/"); got != "200 A" {
				t.Fatalf("with the management server down: %q, want %q", got, "200 A")
			}
		}
		m2 := startMgmt(t, m.addr)
		m2.ver = 100 // versions the data plane has not seen
		m2.set(res{
			resourcev3.ListenerType: {xdsListener(t, "web", port, "main")},
			resourcev3.RouteType:    {routes("main", "/x", "direct:x", "/", "backend")},
			resourcev3.ClusterType:  {edsCluster("backend")},
			resourcev3.EndpointType: {cla("backend", b)},
		})
		await(t, hc, web+"/", "200 B")
		await(t, hc, web+"/x", "200 x")
	})
}

// TestXDSSecrets serves TLS with a certificate from SDS, rotates it and checks that new
// connections get the new one.
func TestXDSSecrets(t *testing.T) {
	protocols(t, func(t *testing.T, delta bool) {
		leak.Check(t)
		m := startMgmt(t, "")
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		lis := func() []types.Resource { return []types.Resource{tlsListener(t, "tls", port, "main", "cert")} }
		m.set(res{
			resourcev3.ListenerType: lis(),
			resourcev3.RouteType:    {routes("main", "/", "direct:secure")},
		})
		s := runXDS(t, m.addr, delta)
		// Without its certificate the listener warms.
		time.Sleep(50 * time.Millisecond)
		if addrOf(s, "tls") != "" {
			t.Fatal("TLS listener bound before its certificate arrived")
		}
		m.set(res{
			resourcev3.ListenerType: lis(),
			resourcev3.RouteType:    {routes("main", "/", "direct:secure")},
			resourcev3.SecretType:   {certSecret(t, "cert", "one.test")},
		})
		hc := &http.Client{Timeout: wait.Timeout, Transport: &http.Transport{
			DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		await(t, hc, "https://"+addr+"/", "200 secure")
		if cn := peerCN(t, addr); cn != "one.test" {
			t.Fatalf("certificate %q, want one.test", cn)
		}
		m.set(res{
			resourcev3.ListenerType: lis(),
			resourcev3.RouteType:    {routes("main", "/", "direct:secure")},
			resourcev3.SecretType:   {certSecret(t, "cert", "two.test")},
		})
		wait.For(t, "the rotated certificate is served", func() bool { return peerCN(t, addr) == "two.test" })
	})
}

func peerCN(t *testing.T, addr string) string {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return ""
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}
