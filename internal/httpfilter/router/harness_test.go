package router_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"golang.org/x/net/http2"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/hcm"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// testTimeout bounds every wait in these tests, so a hang fails instead of stalling.
const testTimeout = 10 * time.Second

// checkGoroutines fails the test if goroutines it started outlive it. It must be called
// first, so its cleanup runs after every other one.
func checkGoroutines(t testing.TB) {
	t.Helper()
	leak.Check(t)
}

// recorder is a filter placed before the router that keeps each finished stream's info,
// keyed by the request's x-test-id, so tests can check response flags.
type recorder struct {
	httpfilter.PassThrough
	mu    sync.Mutex
	infos map[string]httpfilter.StreamInfo
	ch    chan struct{} // signalled on every record
}

func newRecorder() *recorder {
	return &recorder{infos: map[string]httpfilter.StreamInfo{}, ch: make(chan struct{}, 1)}
}

func (r *recorder) Phases() httpfilter.Phases { return httpfilter.PhaseStreamDone }

// NewFilter returns the recorder itself: it keeps no per-stream state.
func (r *recorder) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return r }

func (r *recorder) OnStreamDone(s *httpfilter.Stream) {
	id := s.Request.Value("x-test-id")
	if id == "" {
		return
	}
	r.mu.Lock()
	r.infos[strings.Clone(id)] = s.Info
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// wait returns the info of the stream tagged id, waiting for it to finish.
func (r *recorder) wait(t testing.TB, id string) httpfilter.StreamInfo {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		info, ok := r.infos[id]
		r.mu.Unlock()
		if ok {
			return info
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("stream %q never finished", id)
		}
	}
}

// proxy is the system under test: a cluster manager, a route table compiled against it, and
// a connection manager with the real router filter served on a loopback listener.
type proxy struct {
	addr     string
	clusters *cluster.Manager
	rec      *recorder
	hcm      *model.HTTPConnectionManager
}

// proxyOptions describe a proxy. Zero fields take the defaults below.
type proxyOptions struct {
	clusters []*model.Cluster
	routes   []*model.Route // in the single "*" virtual host
	router   *routerv3.Router
	// hcm adjusts the connection manager's model before it is compiled.
	hcm func(*model.HTTPConnectionManager)
	// vhost adjusts the virtual host before the route table is compiled.
	vhost func(*model.VirtualHost)
}

func newProxy(t testing.TB, o proxyOptions) *proxy {
	t.Helper()
	cm := cluster.NewManager(cluster.Options{})
	t.Cleanup(cm.Close)
	if err := cm.Apply(o.clusters); err != nil {
		t.Fatal(err)
	}
	rc := &model.RouteConfig{Name: "test", VirtualHosts: []*model.VirtualHost{{
		Name: "all", Domains: []string{"*"}, Routes: o.routes,
	}}}
	if o.vhost != nil {
		o.vhost(rc.VirtualHosts[0])
	}
	rt, err := route.Compile(rc, cm.Ref)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	rcfg := o.router
	if rcfg == nil {
		rcfg = &routerv3.Router{}
	}
	routerCfg, err := router.Factory{}.NewConfig(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	m := &model.HTTPConnectionManager{
		StatPrefix: "test", RouteConfig: rc, GenerateRequestID: true,
		MaxRequestHeadersBytes: 60 << 10, MaxHeadersCount: 100,
		HTTPFilters: []model.HTTPFilter{
			{Name: "recorder", Config: rec},
			{Name: router.Name, TypeURL: router.TypeURL, Config: routerCfg},
		},
	}
	if o.hcm != nil {
		o.hcm(m)
	}
	cfg, err := hcm.New(m, slot, hcm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := loopback.Serve(t, func(ctx context.Context, c net.Conn) {
		cfg.ServeConn(ctx, c, listener.ConnInfo{
			RemoteAddr: netip.MustParseAddrPort(c.RemoteAddr().String()),
			LocalAddr:  netip.MustParseAddrPort(c.LocalAddr().String()),
		})
	})
	return &proxy{addr: addr, clusters: cm, rec: rec, hcm: m}
}

// host returns the only host of the named cluster.
func (p *proxy) host(t testing.TB, name string) *cluster.Host {
	t.Helper()
	c := p.clusters.Ref(name).Load()
	if c == nil || len(c.Hosts()) != 1 {
		t.Fatalf("cluster %q: want exactly one host", name)
	}
	return c.Hosts()[0]
}

// staticCluster is a STATIC cluster with one endpoint per address ("ip:port").
func staticCluster(t testing.TB, name string, addrs ...string) *model.Cluster {
	t.Helper()
	c := &model.Cluster{Name: name, Type: model.ClusterStatic, ConnectTimeout: 2 * time.Second}
	var eps []model.Endpoint
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(port)
		eps = append(eps, model.Endpoint{Address: model.SocketAddress{Host: host, Port: uint32(n)}, Weight: 1})
	}
	if len(eps) > 0 {
		c.Localities = []model.LocalityEndpoints{{Endpoints: eps}}
	}
	return c
}

// prefixRoute forwards requests under prefix with action a.
func prefixRoute(prefix string, a *model.RouteAction) *model.Route {
	return &model.Route{Name: prefix, Match: model.RouteMatch{PathKind: model.PathPrefix, Path: prefix}, Route: a}
}

// serveHTTP runs h on a loopback HTTP/1.1 server until the test ends.
func serveHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	return loopback.HTTP(t, h)
}

// serveH2C runs h on a loopback server speaking HTTP/2 with prior knowledge (and
// HTTP/1.1) until the test ends.
func serveH2C(t testing.TB, h http.Handler) string {
	t.Helper()
	return loopback.H2C(t, h)
}

func serve(t testing.TB, srv *http.Server, tlsConf *tls.Config) string {
	t.Helper()
	return loopback.HTTPServer(t, srv, tlsConf)
}

// rawUpstream accepts connections and hands each to fn, for upstreams that must misbehave
// in ways net/http will not. fn owns the connection and must return within testTimeout.
func rawUpstream(t testing.TB, fn func(c net.Conn)) string {
	t.Helper()
	return loopback.Serve(t, func(_ context.Context, c net.Conn) {
		c.SetDeadline(time.Now().Add(testTimeout))
		fn(c)
	})
}

// readRequestHead reads one request head from br, returning false at EOF or on error.
func readRequestHead(br *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, false
	}
	return req, true
}

// h1Client is an HTTP/1.1 client for the proxy; its connections close with the test.
func h1Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// h2cClient is an HTTP/2 prior-knowledge client for the proxy.
func h2cClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, a)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testTimeout}
}

// get sends a GET tagged with id and returns status, body and headers.
func get(t testing.TB, c *http.Client, url, id string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-test-id", id)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// testCA is a certificate authority and a server certificate it issued for the given names,
// all generated in memory.
type testCA struct {
	certPEM []byte
	server  tls.Certificate
}

func newTestCA(t testing.TB, dnsNames ...string) testCA {
	t.Helper()
	ca := certs.CA(t, "router test CA")
	return testCA{certPEM: ca.CertPEM, server: ca.Issue(t, dnsNames[0], x509.ExtKeyUsageServerAuth, dnsNames...).TLS()}
}
