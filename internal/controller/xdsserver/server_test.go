package xdsserver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver/xdstest"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// config is a bootstrap with two listeners (two route configurations) and two static clusters;
// prefix is the first route's match and port the first cluster's endpoint port.
func config(t testing.TB, prefix string, port int) xdsresources.Resources {
	t.Helper()
	listener := func(name string, lport int, prefix, cluster string) string {
		return fmt.Sprintf(`
  - name: %[1]s
    address: {socket_address: {address: 127.0.0.1, port_value: %[2]d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %[1]s
          route_config:
            name: %[1]s
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "%[3]s"}, route: {cluster: %[4]s}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`, name, lport, prefix, cluster)
	}
	cluster := func(name string, port int) string {
		return fmt.Sprintf(`
  - name: %s
    load_assignment:
      cluster_name: %[1]s
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}`, name, port)
	}
	y := "static_resources:\n  listeners:" + listener("a", 8001, prefix, "one") + listener("b", 8002, "/", "two") +
		"\n  clusters:" + cluster("one", port) + cluster("two", 9002) + "\n"
	b, err := envoyconfig.UnmarshalBootstrap([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	r, err := xdsresources.FromBootstrap(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// start serves srv on a loopback port until the test ends.
func start(t *testing.T, srv *xdsserver.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis.Addr().String()
}

func hasAll(st xdstest.State) bool {
	return len(st.Resources[resourcev3.ListenerType]) == 2 && len(st.Resources[resourcev3.RouteType]) == 2 &&
		len(st.Resources[resourcev3.ClusterType]) == 2 && len(st.Resources[resourcev3.EndpointType]) == 2
}

func routePrefix(st xdstest.State, name string) string {
	a := st.Resources[resourcev3.RouteType][name]
	if a == nil {
		return ""
	}
	rc := &routev3.RouteConfiguration{}
	if err := a.UnmarshalTo(rc); err != nil {
		return ""
	}
	return rc.GetVirtualHosts()[0].GetRoutes()[0].GetMatch().GetPrefix()
}

func endpointPort(st xdstest.State, name string) uint32 {
	a := st.Resources[resourcev3.EndpointType][name]
	if a == nil {
		return 0
	}
	cla := &endpointv3.ClusterLoadAssignment{}
	if err := a.UnmarshalTo(cla); err != nil {
		return 0
	}
	return cla.GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
}

// TestPushToThreeClients connects three clients and checks that each update reaches all of
// them and carries only what changed: the changed type for state-of-the-world streams, the
// changed resource for delta streams.
func TestPushToThreeClients(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delta bool
	}{
		{name: "sotw", delta: false},
		{name: "delta", delta: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := xdsserver.New(xdsserver.Options{})
			if _, err := srv.Update(config(t, "/v1", 9001)); err != nil {
				t.Fatal(err)
			}
			addr := start(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			var clients []*xdstest.Client
			for i := range 3 {
				c, err := xdstest.Dial(ctx, addr, fmt.Sprintf("node-%d", i), tc.delta)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
			}
			waitAll(ctx, t, clients, hasAll)
			if n := srv.Nodes(); n != 3 {
				t.Errorf("Nodes() = %d, want 3", n)
			}
			before := make([]int, len(clients))
			for i, c := range clients {
				before[i] = len(c.Responses())
			}

			// One route changes: only route configuration "a" is pushed.
			d, err := srv.Update(config(t, "/v2", 9001))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != "rds: 1 changed" {
				t.Errorf("diff = %q, want %q", got, "rds: 1 changed")
			}
			waitAll(ctx, t, clients, func(st xdstest.State) bool { return routePrefix(st, "a") == "/v2" })
			for i, c := range clients {
				pushed := c.Responses()[before[i]:]
				want := []string{"a", "b"} // SotW: the type's full set
				if tc.delta {
					want = []string{"a"}
				}
				checkPushed(t, c.Node, pushed, resourcev3.RouteType, want)
				before[i] += len(pushed)
			}

			// One endpoint changes: only cluster "one"'s assignment is pushed.
			if _, err := srv.Update(config(t, "/v2", 9009)); err != nil {
				t.Fatal(err)
			}
			waitAll(ctx, t, clients, func(st xdstest.State) bool { return endpointPort(st, "one") == 9009 })
			for i, c := range clients {
				want := []string{"one", "two"}
				if tc.delta {
					want = []string{"one"}
				}
				checkPushed(t, c.Node, c.Responses()[before[i]:], resourcev3.EndpointType, want)
			}
		})
	}
}

func waitAll(ctx context.Context, t *testing.T, clients []*xdstest.Client, cond func(xdstest.State) bool) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	for _, c := range clients {
		wg.Go(func() { errs <- c.Wait(ctx, cond) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// checkPushed checks that the responses are exactly one, of typ, carrying names.
func checkPushed(t *testing.T, node string, pushed []xdstest.Response, typ string, names []string) {
	t.Helper()
	if len(pushed) != 1 {
		var types []string
		for _, r := range pushed {
			types = append(types, r.TypeURL)
		}
		t.Errorf("%s: %d responses %v, want one of %s", node, len(pushed), types, typ)
		return
	}
	got := slices.Sorted(slices.Values(pushed[0].Names))
	if pushed[0].TypeURL != typ || !slices.Equal(got, names) {
		t.Errorf("%s: pushed %s %v, want %s %v", node, pushed[0].TypeURL, got, typ, names)
	}
}

// TestVersionsFollowContent checks that versions are content hashes: an identical update
// changes nothing, and a changed route moves only the route type's version.
func TestVersionsFollowContent(t *testing.T) {
	srv := xdsserver.New(xdsserver.Options{})
	if _, err := srv.Update(config(t, "/v1", 9001)); err != nil {
		t.Fatal(err)
	}
	versions := func() map[string]string {
		m := map[string]string{}
		for _, typ := range xdstest.Types {
			m[typ] = srv.Version(typ)
		}
		return m
	}
	v1 := versions()
	d, err := srv.Update(config(t, "/v1", 9001))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Empty() {
		t.Errorf("identical update: diff %s", d)
	}
	if _, err := srv.Update(config(t, "/v2", 9001)); err != nil {
		t.Fatal(err)
	}
	v2 := versions()
	for _, typ := range xdstest.Types {
		if changed := v1[typ] != v2[typ]; changed != (typ == resourcev3.RouteType) {
			t.Errorf("%s: version %q → %q", typ, v1[typ], v2[typ])
		}
	}
	// Two servers agree on versions: they depend on content only.
	other := xdsserver.New(xdsserver.Options{})
	if _, err := other.Update(config(t, "/v2", 9001)); err != nil {
		t.Fatal(err)
	}
	for _, typ := range xdstest.Types {
		if got := other.Version(typ); got != v2[typ] {
			t.Errorf("%s: another server's version %q, want %q", typ, got, v2[typ])
		}
	}
}

// TestNodeLifecycle checks that a node counts while it has a stream, and that a node
// connecting before the first update is answered when it comes.
func TestNodeLifecycle(t *testing.T) {
	srv := xdsserver.New(xdsserver.Options{})
	addr := start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := xdstest.Dial(ctx, addr, "early", false)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "one node connected", func() bool { return srv.Nodes() == 1 })
	if _, err := srv.Update(config(t, "/", 9001)); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx, hasAll); err != nil {
		t.Fatal(err)
	}
	c.Close()
	wait.For(t, "no node connected", func() bool { return srv.Nodes() == 0 })
}

// TestHealth checks the gRPC health service on the xDS port and the HTTP handler: not ready
// before the first update, ready after it.
func TestHealth(t *testing.T) {
	srv := xdsserver.New(xdsserver.Options{})
	addr := start(t, srv)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(want healthpb.HealthCheckResponse_ServingStatus, wantReady int) {
		t.Helper()
		for _, svc := range []string{"", "envoy.service.discovery.v3.AggregatedDiscoveryService"} {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetStatus() != want {
				t.Errorf("health %q = %v, want %v", svc, resp.GetStatus(), want)
			}
		}
		rec := httptest.NewRecorder()
		srv.HealthHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		if rec.Code != wantReady {
			t.Errorf("/readyz = %d, want %d", rec.Code, wantReady)
		}
		rec = httptest.NewRecorder()
		srv.HealthHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("/healthz = %d, want 200", rec.Code)
		}
	}
	check(healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable)
	if _, err := srv.Update(config(t, "/", 9001)); err != nil {
		t.Fatal(err)
	}
	check(healthpb.HealthCheckResponse_SERVING, http.StatusOK)
}

// TestDrain checks that Serve returns soon after its context ends even with streams open:
// the streams are ended rather than waited for.
func TestDrain(t *testing.T) {
	// A drain time far longer than the test may wait: Serve returning at all shows it ended
	// the stream instead of waiting for it.
	srv := xdsserver.New(xdsserver.Options{DrainTime: time.Hour})
	if _, err := srv.Update(config(t, "/", 9001)); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	c, err := xdstest.Dial(wctx, lis.Addr().String(), "n", true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Wait(wctx, hasAll); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Serve is waiting out the drain time for the open stream")
	}
}
