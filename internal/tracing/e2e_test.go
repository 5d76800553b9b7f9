package tracing_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/hcm"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/tracing"
)

// receiver is an in-process OTLP/gRPC collector.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	attrs map[string]string // resource attributes of the last export
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		r.attrs = map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			r.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) take() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.spans
	r.spans = nil
	return s
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	ln := loopback.Listen(t)
	r := &receiver{}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return r, ln.Addr().String()
}

// upstream is a backend that records the trace headers it receives.
type upstream struct {
	mu      sync.Mutex
	headers []http.Header
}

func startUpstream(t *testing.T, status int) (*upstream, string) {
	t.Helper()
	u := &upstream{}
	addr := loopback.HTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, "hello")
	}))
	return u, addr
}

func (u *upstream) last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		t.Fatal("upstream saw no request")
	}
	return u.headers[len(u.headers)-1]
}

func staticCluster(t *testing.T, name, addr string) *model.Cluster {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(port)
	return &model.Cluster{Name: name, Type: model.ClusterStatic, ConnectTimeout: 2 * time.Second,
		Localities: []model.LocalityEndpoints{{Endpoints: []model.Endpoint{{Address: model.SocketAddress{Host: host, Port: uint32(n)}, Weight: 1}}}}}
}

// startProxy serves a connection manager with the real router in front of backendAddr.
func startProxy(t *testing.T, backendAddr string, tr *model.Tracing, logs []any) string {
	t.Helper()
	cm := cluster.NewManager(cluster.Options{})
	t.Cleanup(cm.Close)
	if err := cm.Apply([]*model.Cluster{staticCluster(t, "backend", backendAddr)}); err != nil {
		t.Fatal(err)
	}
	rc := &model.RouteConfig{Name: "test", VirtualHosts: []*model.VirtualHost{{
		Name: "all", Domains: []string{"*"}, Routes: []*model.Route{
			{Name: "direct", Match: model.RouteMatch{PathKind: model.PathExact, Path: "/direct"}, DirectResponse: &model.DirectResponseAction{Status: 204}},
			{Name: "backend", Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"}, Route: &model.RouteAction{Cluster: "backend", Timeout: 5 * time.Second}},
		},
	}}}
	rt, err := route.Compile(rc, cm.Ref)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	rcfg, err := router.Factory{}.NewConfig(&routerv3.Router{})
	if err != nil {
		t.Fatal(err)
	}
	m := &model.HTTPConnectionManager{
		StatPrefix: "test", RouteConfig: rc, GenerateRequestID: true,
		MaxRequestHeadersBytes: 60 << 10, MaxHeadersCount: 100,
		HTTPFilters: []model.HTTPFilter{{Name: router.Name, TypeURL: router.TypeURL, Config: rcfg}},
		Tracing:     tr, AccessLogs: logs,
	}
	cfg, err := hcm.New(m, slot, hcm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return loopback.Serve(t, func(ctx context.Context, c net.Conn) {
		cfg.ServeConn(ctx, c, listener.ConnInfo{
			RemoteAddr: netip.MustParseAddrPort(c.RemoteAddr().String()),
			LocalAddr:  netip.MustParseAddrPort(c.LocalAddr().String()),
		})
	})
}

func tracingModel(collector string) *model.Tracing {
	return &model.Tracing{
		ClientSampling: 100, RandomSampling: 100, OverallSampling: 100, MaxPathTagLength: 256,
		SpawnUpstreamSpan: true, NodeID: "node-1",
		CustomTags: []model.CustomTag{{Tag: "env", Literal: "test"}, {Tag: "tenant", RequestHeader: "x-tenant", DefaultValue: "none"}},
		Provider: model.OpenTelemetry{
			ServiceName: "gateway-" + collector, CollectorCluster: "otel", CollectorAddress: collector,
			Timeout: 5 * time.Second, MaxCacheSize: 1024,
		},
	}
}

func get(t *testing.T, addr, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func waitSpans(t *testing.T, r *receiver, n int) []*tracepb.Span {
	t.Helper()
	var got []*tracepb.Span
	wait.For(t, fmt.Sprintf("%d spans", n), func() bool {
		tracing.Flush()
		got = append(got, r.take()...)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("got %d spans, want %d", len(got), n)
	}
	return got
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.GetAttributes() {
		if v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
			m[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
		} else {
			m[kv.GetKey()] = kv.GetValue().GetStringValue()
		}
	}
	return m
}

func byKind(t *testing.T, spans []*tracepb.Span) (server *tracepb.Span, clients []*tracepb.Span) {
	t.Helper()
	for _, s := range spans {
		if s.GetKind() == tracepb.Span_SPAN_KIND_SERVER {
			server = s
		} else {
			clients = append(clients, s)
		}
	}
	if server == nil {
		t.Fatal("no server span")
	}
	return server, clients
}

// A request through the data plane with a W3C parent: the collector receives a server span
// that is the parent's child and a client span that is the server span's child, and the
// upstream sees the client span's context.
func TestTraceparentThroughProxy(t *testing.T) {
	r, collector := startReceiver(t)
	up, backend := startUpstream(t, 200)
	proxy := startProxy(t, backend, tracingModel(collector), nil)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parent = "00f067aa0ba902b7"
	resp := get(t, proxy, "/api/items?x=1", map[string]string{
		"traceparent": "00-" + traceID + "-" + parent + "-01",
		"tracestate":  "vendor=abc",
		"x-tenant":    "acme",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	spans := waitSpans(t, r, 2)
	server, clients := byKind(t, spans)
	if len(clients) != 1 {
		t.Fatalf("%d client spans", len(clients))
	}
	client := clients[0]
	if got := hex.EncodeToString(server.GetTraceId()); got != traceID {
		t.Errorf("server trace id %s", got)
	}
	if got := hex.EncodeToString(server.GetParentSpanId()); got != parent {
		t.Errorf("server parent %s, want %s", got, parent)
	}
	if !bytes.Equal(client.GetParentSpanId(), server.GetSpanId()) || !bytes.Equal(client.GetTraceId(), server.GetTraceId()) {
		t.Errorf("client span is not the server span's child")
	}
	tp := up.last(t).Get("traceparent")
	if want := "00-" + traceID + "-" + hex.EncodeToString(client.GetSpanId()) + "-01"; tp != want {
		t.Errorf("upstream traceparent %q, want %q", tp, want)
	}
	if ts := up.last(t).Get("tracestate"); ts != "vendor=abc" {
		t.Errorf("tracestate %q", ts)
	}

	sa := spanAttrs(server)
	for k, want := range map[string]string{
		"component": "proxy", "node_id": "node-1", "http.method": "GET", "http.status_code": "200",
		"upstream_cluster": "backend", "response_flags": "-", "env": "test", "tenant": "acme",
		"http.protocol": "HTTP/1.1",
	} {
		if sa[k] != want {
			t.Errorf("server %s = %q, want %q", k, sa[k], want)
		}
	}
	if !strings.HasSuffix(sa["http.url"], "/api/items?x=1") || !strings.HasPrefix(sa["http.url"], "http://") {
		t.Errorf("http.url %q", sa["http.url"])
	}
	if sa["guid:x-request-id"] == "" || sa["guid:x-request-id"] != up.last(t).Get("x-request-id") {
		t.Errorf("guid:x-request-id %q, upstream saw %q", sa["guid:x-request-id"], up.last(t).Get("x-request-id"))
	}
	ca := spanAttrs(client)
	if client.GetName() != "router backend egress" || ca["upstream_address"] != backend || ca["http.status_code"] != "200" {
		t.Errorf("client span %q %v", client.GetName(), ca)
	}
	if server.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Error("200 marked as an error")
	}
	if r.attrs["service.name"] != "gateway-"+collector {
		t.Errorf("resource %v", r.attrs)
	}
}

func TestB3ThroughProxy(t *testing.T) {
	r, collector := startReceiver(t)
	up, backend := startUpstream(t, 503)
	proxy := startProxy(t, backend, tracingModel(collector), nil)

	t.Run("multi", func(t *testing.T) {
		get(t, proxy, "/", map[string]string{
			"x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1",
		})
		server, clients := byKind(t, waitSpans(t, r, 2))
		if got := hex.EncodeToString(server.GetTraceId()); got != "0000000000000000463ac35c9f6413ad" {
			t.Errorf("trace id %s", got)
		}
		if got := hex.EncodeToString(server.GetParentSpanId()); got != "a2fb4a1d1a96d312" {
			t.Errorf("parent %s", got)
		}
		h := up.last(t)
		if h.Get("x-b3-spanid") != hex.EncodeToString(clients[0].GetSpanId()) ||
			h.Get("x-b3-parentspanid") != hex.EncodeToString(server.GetSpanId()) || h.Get("x-b3-sampled") != "1" {
			t.Errorf("upstream b3 headers %v", h)
		}
		if server.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || spanAttrs(server)["error"] != "true" {
			t.Error("a 503 is not marked as an error")
		}
	})
	t.Run("single", func(t *testing.T) {
		get(t, proxy, "/", map[string]string{"b3": "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"})
		server, clients := byKind(t, waitSpans(t, r, 2))
		if got := hex.EncodeToString(server.GetTraceId()); got != "80f198ee56343ba864fe8b2a57d3eff7" {
			t.Errorf("trace id %s", got)
		}
		want := "80f198ee56343ba864fe8b2a57d3eff7-" + hex.EncodeToString(clients[0].GetSpanId()) + "-1-" + hex.EncodeToString(server.GetSpanId())
		if got := up.last(t).Get("b3"); got != want {
			t.Errorf("upstream b3 %q, want %q", got, want)
		}
	})
	t.Run("not sampled", func(t *testing.T) {
		get(t, proxy, "/", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"})
		tracing.Flush()
		if got := r.take(); len(got) != 0 {
			t.Errorf("%d spans exported for an unsampled trace", len(got))
		}
		tp := up.last(t).Get("traceparent")
		if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || !strings.HasSuffix(tp, "-00") {
			t.Errorf("upstream traceparent %q", tp)
		}
	})
}

func TestSampling(t *testing.T) {
	r, collector := startReceiver(t)
	_, backend := startUpstream(t, 200)
	m := tracingModel(collector)
	m.RandomSampling = 0
	proxy := startProxy(t, backend, m, nil)

	get(t, proxy, "/", nil)
	tracing.Flush()
	if got := r.take(); len(got) != 0 {
		t.Errorf("random_sampling 0: %d spans", len(got))
	}
	// x-client-trace-id selects client_sampling (100%) instead.
	get(t, proxy, "/", map[string]string{"x-client-trace-id": "abc"})
	waitSpans(t, r, 2)
	// A direct response has a server span and no upstream attempt.
	get(t, proxy, "/direct", map[string]string{"x-client-trace-id": "abc"})
	server, clients := byKind(t, waitSpans(t, r, 1))
	if len(clients) != 0 || spanAttrs(server)["http.status_code"] != "204" {
		t.Errorf("direct response spans: %v", spanAttrs(server))
	}
}

// Access logs written at stream end through the connection manager, for proxied requests,
// local replies and requests refused before routing.
func TestAccessLogThroughProxy(t *testing.T) {
	_, backend := startUpstream(t, 200)
	path := filepath.Join(t.TempDir(), "access.log")
	a, _ := anypb.New(&filev3.FileAccessLog{Path: path, AccessLogFormat: &filev3.FileAccessLog_Format{
		Format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %BYTES_SENT% %ROUTE_NAME%\n",
	}})
	l, err := accesslog.Compile(&accesslogv3.AccessLog{ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, accesslog.Default)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, backend, nil, []any{l})

	get(t, proxy, "/ok", nil)
	get(t, proxy, "/direct", nil)
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	c.Close()
	if !strings.Contains(line, "400") {
		t.Fatalf("smuggling attempt answered %q", line)
	}
	// An idle connection that closes without a request logs nothing.
	c2, _ := net.Dial("tcp", proxy)
	c2.Close()

	var got string
	wait.For(t, "3 access log lines", func() bool {
		accesslog.Flush()
		b, _ := os.ReadFile(path)
		got = string(b)
		return strings.Count(got, "\n") >= 3
	})
	// A line is written when its stream ends, after the client has its response, so requests
	// on different connections may log in either order: compare as a sorted set.
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), got)
	}
	sort.Strings(lines) // the refused request (no method or path: "- -"), GET /direct, GET /ok
	want := map[int]string{
		1: "GET /direct HTTP/1.1 204 - direct_response - - 0 direct",
		2: "GET /ok HTTP/1.1 200 - via_upstream backend " + backend + " 5 backend",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d: got  %q\nwant %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], " 400 DPE ") {
		t.Errorf("protocol error line %q", lines[0])
	}
}
