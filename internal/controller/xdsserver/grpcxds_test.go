package xdsserver_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/xds"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// grpcConfig is what gRPC's xDS client needs, written as an Envoy bootstrap: an API listener
// named after the target whose connection manager ends with the router, a route to a cluster,
// and the cluster's endpoints. The controller moves the routes to RDS and the endpoints to EDS.
const grpcConfig = `
static_resources:
  listeners:
  - name: service-name
    api_listener:
      api_listener:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: grpc
        route_config:
          name: service-name
          virtual_hosts:
          - name: service
            domains: ["*"]
            routes:
            - match: {prefix: ""}
              route: {cluster: backend}
        http_filters:
        - name: envoy.filters.http.router
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: backend
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
`

// backend is a gRPC server on loopback whose health service knows one service name, so that a
// client can tell which backend answered.
func backend(t *testing.T, name string) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}

// TestGRPCXDSClient has grpc-go's own xDS client resolve xds:///service-name through the
// controller (LDS → RDS → CDS → EDS) and call a real backend, then follows an endpoint change
// to a second backend.
func TestGRPCXDSClient(t *testing.T) {
	port1, port2 := backend(t, "one"), backend(t, "two")
	r, err := source.Translate("grpc.yaml", fmt.Appendf(nil, grpcConfig, port1))
	if err != nil {
		t.Fatal(err)
	}
	srv := xdsserver.New(xdsserver.Options{})
	if _, err := srv.Update(r); err != nil {
		t.Fatal(err)
	}
	addr := start(t, srv)

	bootstrap := fmt.Appendf(nil, `{
		"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "grpc-client", "cluster": "test"}
	}`, addr)
	resolver, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///service-name",
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(resolver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "one"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("call through xds:///service-name: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.GetStatus())
	}

	// Move the endpoint to the second backend: one EDS push, and calls follow it.
	r, err = source.Translate("grpc.yaml", fmt.Appendf(nil, grpcConfig, port2))
	if err != nil {
		t.Fatal(err)
	}
	d, err := srv.Update(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.String(); got != "eds: 1 changed" {
		t.Errorf("diff = %q, want %q", got, "eds: 1 changed")
	}
	wait.NoError(t, "calls to reach the second backend", func() error {
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "two"}, grpc.WaitForReady(true))
		return err
	})
}
