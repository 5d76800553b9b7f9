package extauthz

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// grpcAuth is a real envoy.service.auth.v3.Authorization server (grpc-go, h2c) deciding by
// the request's path.
type grpcAuth struct {
	authv3.UnimplementedAuthorizationServer
	mu   sync.Mutex
	last *authv3.CheckRequest
}

func (g *grpcAuth) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	g.mu.Lock()
	g.last = req
	g.mu.Unlock()
	hv := func(k, v string, appendIt bool) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}, Append: wrapperspb.Bool(appendIt)}
	}
	switch p := req.GetAttributes().GetRequest().GetHttp().GetPath(); {
	case strings.HasPrefix(p, "/allow"):
		return &authv3.CheckResponse{Status: &status.Status{Code: 0}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:              []*corev3.HeaderValueOption{hv("x-user", "alice", false), hv("x-groups", "b", true), hv("content-length", "9", false)},
			HeadersToRemove:      []string{"x-secret"},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hv("x-client-ok", "yes", false)},
		}}}, nil
	case strings.HasPrefix(p, "/deny"):
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}, HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: []*corev3.HeaderValueOption{hv("www-authenticate", "Bearer", false)},
			Body:    "no entry",
		}}}, nil
	case strings.HasPrefix(p, "/bare-deny"):
		return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}, nil
	case strings.HasPrefix(p, "/slow"):
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, grpcstatus.Error(codes.Unavailable, "not today")
}

func (g *grpcAuth) lastRequest() *authv3.CheckRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func serveGRPCAuth(t testing.TB) (*grpcAuth, string) {
	ln := loopback.Listen(t)
	srv := grpc.NewServer()
	ga := &grpcAuth{}
	authv3.RegisterAuthorizationServer(srv, ga)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ga, ln.Addr().String()
}

func grpcBootstrap(t testing.TB, authAddr, upstreamAddr string) string {
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: authz
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: grpc
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    check_settings: {context_extensions: {tenant: blue}}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service: {envoy_grpc: {cluster_name: authz}, timeout: 0.5s}
              with_request_body: {max_request_bytes: 64}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: authz
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: authz
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[1]s}}}}]}]
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]s}}}}]}]
`, portOf(t, authAddr), portOf(t, upstreamAddr))
}

// TestGRPC runs the filter in gRPC mode against a real grpc-go Authorization server.
func TestGRPC(t *testing.T) {
	leak.Check(t)
	ga, authAddr := serveGRPCAuth(t)
	upAddr := loopback.HTTP(t, &loopback.Echo{Name: "up"})
	gw := gateway(t, grpcBootstrap(t, authAddr, upAddr))
	c := newClient(t)
	base := "http://" + gw

	t.Run("allowed with the service's header changes", func(t *testing.T) {
		r := do(t, c, "POST", base+"/allow?q=1", "payload", map[string]string{"x-user": "mallory", "x-groups": "a", "x-secret": "s", "x-envoy-auth-x": "forged"})
		if r.status != 200 {
			t.Fatalf("status %d %q", r.status, r.body)
		}
		up, _ := loopback.DecodeEcho([]byte(r.body))
		for name, want := range map[string]string{"X-User": "alice", "X-Groups": "a,b", "X-Secret": "", "X-Envoy-Auth-X": ""} {
			if got := strings.Join(up.Header.Values(name), ","); got != want {
				t.Errorf("upstream %s = %q, want %q", name, got, want)
			}
		}
		if up.Body != "payload" {
			t.Errorf("upstream body %q", up.Body)
		}
		if r.header.Get("x-client-ok") != "yes" {
			t.Errorf("client x-client-ok = %q", r.header.Get("x-client-ok"))
		}
		req := ga.lastRequest()
		a := req.GetAttributes()
		hr := a.GetRequest().GetHttp()
		if hr.GetMethod() != "POST" || hr.GetPath() != "/allow?q=1" || hr.GetQuery() != "q=1" || hr.GetHost() != gw || hr.GetBody() != "payload" {
			t.Errorf("http attributes %v", hr)
		}
		if hr.GetHeaders()[":path"] != "/allow?q=1" || hr.GetHeaders()["x-secret"] != "s" || hr.GetHeaders()["x-envoy-auth-x"] != "" {
			t.Errorf("headers %v", hr.GetHeaders())
		}
		if a.GetContextExtensions()["tenant"] != "blue" {
			t.Errorf("context_extensions %v", a.GetContextExtensions())
		}
		if got := a.GetSource().GetAddress().GetSocketAddress().GetAddress(); got != "127.0.0.1" {
			t.Errorf("source address %q", got)
		}
		if got := a.GetDestination().GetAddress().GetSocketAddress().GetPortValue(); fmt.Sprint(got) != portOf(t, gw) {
			t.Errorf("destination port %d, gateway on %s", got, gw)
		}
	})
	for _, tc := range []struct {
		name, path string
		wantStatus int
		wantBody   string
		wantHeader string
	}{
		{name: "denied", path: "/deny", wantStatus: 401, wantBody: "no entry", wantHeader: "Bearer"},
		{name: "denied without a response", path: "/bare-deny", wantStatus: 403},
		{name: "grpc error", path: "/other", wantStatus: 403},
		{name: "timeout", path: "/slow", wantStatus: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, "GET", base+tc.path, "", nil)
			if r.status != tc.wantStatus || r.body != tc.wantBody || r.header.Get("www-authenticate") != tc.wantHeader {
				t.Errorf("got %d %q www-authenticate %q, want %d %q %q", r.status, r.body, r.header.Get("www-authenticate"), tc.wantStatus, tc.wantBody, tc.wantHeader)
			}
		})
	}
}
