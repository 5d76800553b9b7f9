package router_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

func TestHTTP2Upstream(t *testing.T) {
	checkGoroutines(t)
	h1 := serveHTTP(t, echoHandler("h1"))
	h2 := serveH2C(t, echoHandler("h2"))
	h2Cluster := staticCluster(t, "h2", h2)
	h2Cluster.Protocol = model.UpstreamHTTP2
	// use_downstream_protocol against a server that speaks both.
	auto := staticCluster(t, "auto", h2)
	auto.Protocol = model.UpstreamUseDownstream
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "h1", h1), h2Cluster, auto},
		routes: []*model.Route{
			prefixRoute("/h2", &model.RouteAction{Cluster: "h2"}),
			prefixRoute("/auto", &model.RouteAction{Cluster: "auto"}),
			prefixRoute("/", &model.RouteAction{Cluster: "h1"}),
		},
	})
	big := strings.Repeat("z", 300<<10) // beyond the default HTTP/2 windows
	tests := []struct {
		name      string
		client    string // "h1" or "h2c"
		method    string
		path      string
		body      string
		wantProto string
		want      []string
	}{
		{name: "h1 client to h2 upstream", client: "h1", method: "GET", path: "/h2/a?b=c", wantProto: "HTTP/2.0", want: []string{"path=/h2/a?b=c", "method=GET"}},
		{name: "h2c client to h2 upstream", client: "h2c", method: "GET", path: "/h2/a", wantProto: "HTTP/2.0"},
		{name: "h1 client posts to h2 upstream", client: "h1", method: "POST", path: "/h2/p", body: "hello", wantProto: "HTTP/2.0", want: []string{"body=hello"}},
		{name: "h2c client posts a large body to h2 upstream", client: "h2c", method: "POST", path: "/h2/p", body: big, wantProto: "HTTP/2.0", want: []string{"body-sha=" + sha([]byte(big))}},
		{name: "h2c client to h1 upstream", client: "h2c", method: "POST", path: "/x", body: "hi", wantProto: "HTTP/1.1", want: []string{"body=hi"}},
		{name: "downstream protocol h1", client: "h1", method: "GET", path: "/auto", wantProto: "HTTP/1.1"},
		{name: "downstream protocol h2", client: "h2c", method: "GET", path: "/auto", wantProto: "HTTP/2.0"},
	}
	clients := map[string]*http.Client{"h1": h1Client(t), "h2c": h2cClient(t)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, "http://"+p.addr+tc.path, body)
			req.Header.Set("x-test-id", tc.name)
			resp, err := clients[tc.client].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d err %v: %s", resp.StatusCode, err, b)
			}
			for _, w := range append(tc.want, "proto="+tc.wantProto) {
				if !strings.Contains(string(b), w+"\n") {
					t.Errorf("upstream saw no %q:\n%.2000s", w, b)
				}
			}
			if resp.Header.Get("x-envoy-upstream-service-time") == "" {
				t.Errorf("no x-envoy-upstream-service-time")
			}
		})
	}
}

func TestHTTP2UpstreamFailures(t *testing.T) {
	refused := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		addr       string
		timeout    time.Duration
		wantStatus int
		wantFlag   httpfilter.ResponseFlags
	}{
		{
			name:       "connection refused",
			addr:       refused,
			wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectFailure,
		},
		{
			name: "route timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(testTimeout):
				}
			},
			timeout:    100 * time.Millisecond,
			wantStatus: 504, wantFlag: httpfilter.FlagUpstreamRequestTimeout,
		},
		{
			name:       "stream reset before headers",
			handler:    func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			wantStatus: 503,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			addr := tc.addr
			if tc.handler != nil {
				addr = serveH2C(t, tc.handler)
			}
			cl := staticCluster(t, "h2", addr)
			cl.Protocol = model.UpstreamHTTP2
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{cl},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "h2", Timeout: tc.timeout})},
			})
			status, body, _ := get(t, h1Client(t), "http://"+p.addr+"/", "x")
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d: %q", status, tc.wantStatus, body)
			}
			if info := p.rec.wait(t, "x"); tc.wantFlag != 0 && info.ResponseFlags&tc.wantFlag == 0 {
				t.Errorf("flags %v, want %v", info.ResponseFlags, tc.wantFlag)
			}
		})
	}
}

func TestHTTP2UpstreamReuse(t *testing.T) {
	checkGoroutines(t)
	up := serveH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	cl := staticCluster(t, "h2", up)
	cl.Protocol = model.UpstreamHTTP2
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{cl},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "h2"})},
	})
	c := h1Client(t)
	for i := range 5 {
		if status, body, _ := get(t, c, "http://"+p.addr+"/", "r"); status != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if st := p.host(t, "h2").Pool.Stats(); st.Connects != 1 || st.Reuses != 4 {
		t.Errorf("connects %d reuses %d, want 1 and 4", st.Connects, st.Reuses)
	}
}

func TestTLSUpstream(t *testing.T) {
	ca := newTestCA(t, "backend.test")
	other := newTestCA(t, "backend.test")
	tests := []struct {
		name       string
		trusted    []byte
		h2         bool
		wantStatus int
		wantFlag   httpfilter.ResponseFlags
	}{
		{name: "http/1.1 verified", trusted: ca.certPEM, wantStatus: 200},
		{name: "http/2 verified", trusted: ca.certPEM, h2: true, wantStatus: 200},
		{name: "wrong ca", trusted: other.certPEM, wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectFailure},
		{name: "http/2 wrong ca", trusted: other.certPEM, h2: true, wantStatus: 503, wantFlag: httpfilter.FlagUpstreamConnectFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			var mu sync.Mutex
			var snis []string
			tlsConf := &tls.Config{
				Certificates: []tls.Certificate{ca.server},
				NextProtos:   []string{"h2", "http/1.1"},
				GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
					mu.Lock()
					snis = append(snis, hi.ServerName)
					mu.Unlock()
					return nil, nil
				},
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Proto+" tls="+tls.VersionName(r.TLS.Version))
			})}
			up := serve(t, srv, tlsConf)
			cl := staticCluster(t, "tls", up)
			cl.TLS = &model.UpstreamTLS{SNI: "backend.test", TrustedCAPEM: tc.trusted}
			if tc.h2 {
				cl.Protocol = model.UpstreamHTTP2
			}
			p := newProxy(t, proxyOptions{
				clusters: []*model.Cluster{cl},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "tls"})},
			})
			c := h1Client(t)
			for i := range 2 { // the second request reuses the TLS connection
				status, body, _ := get(t, c, "http://"+p.addr+"/", "x")
				if status != tc.wantStatus {
					t.Fatalf("request %d: status %d, want %d: %q", i, status, tc.wantStatus, body)
				}
				wantProto := "HTTP/1.1"
				if tc.h2 {
					wantProto = "HTTP/2.0"
				}
				if status == 200 && !strings.HasPrefix(body, wantProto+" tls=") {
					t.Errorf("upstream answered %q, want %s over TLS", body, wantProto)
				}
				if info := p.rec.wait(t, "x"); tc.wantFlag != 0 && info.ResponseFlags&tc.wantFlag == 0 {
					t.Errorf("flags %v, want %v", info.ResponseFlags, tc.wantFlag)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(snis) == 0 || snis[0] != "backend.test" {
				t.Errorf("SNI seen by the upstream: %q", snis)
			}
			if tc.wantStatus == 200 && len(snis) != 1 {
				t.Errorf("%d handshakes for two requests, want 1", len(snis))
			}
		})
	}
}

// testService implements grpc.testing.TestService for the calls these tests make.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s := req.GetResponseStatus(); s != nil && s.Code != 0 {
		return nil, status.Error(codes.Code(s.Code), s.Message)
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: make([]byte, req.GetResponseSize())}}, nil
}

func (testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	for _, rp := range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, rp.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) FullDuplexCall(stream testgrpc.TestService_FullDuplexCallServer) error {
	for range 1000 { // bounded; clients here send a handful
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if s := req.GetResponseStatus(); s != nil && s.Code != 0 {
			return status.Error(codes.Code(s.Code), s.Message)
		}
		for _, rp := range req.GetResponseParameters() {
			if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, rp.GetSize())}}); err != nil {
				return err
			}
		}
	}
	return status.Error(codes.ResourceExhausted, "too many messages")
}

// grpcProxy runs a gRPC server behind an h2c cluster and returns a client connection to the
// proxy and the server's health service.
func grpcProxy(t *testing.T) (*grpc.ClientConn, *health.Server, *proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	testgrpc.RegisterTestServiceServer(srv, testService{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	cl := staticCluster(t, "grpc", ln.Addr().String())
	cl.Protocol = model.UpstreamHTTP2
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{cl},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "grpc"})},
	})
	cc, err := grpc.NewClient("passthrough:///"+p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, hs, p
}

func TestGRPC(t *testing.T) {
	checkGoroutines(t)
	cc, hs, _ := grpcProxy(t)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	hc := healthpb.NewHealthClient(cc)
	tc := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	t.Run("unary", func(t *testing.T) {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check: %v %v", resp, err)
		}
	})
	t.Run("unary large", func(t *testing.T) {
		resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1 << 20, Payload: &testgrpc.Payload{Body: make([]byte, 1<<20)}})
		if err != nil || len(resp.GetPayload().GetBody()) != 1<<20 {
			t.Fatalf("UnaryCall: %d bytes, %v", len(resp.GetPayload().GetBody()), err)
		}
	})
	errorCases := []struct {
		name string
		call func() error
		want codes.Code
		msg  string
	}{
		{
			name: "trailers-only not found",
			call: func() error {
				_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
				return err
			},
			want: codes.NotFound,
		},
		{
			name: "trailers-only with a message",
			call: func() error {
				_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.PermissionDenied), Message: "go away"}})
				return err
			},
			want: codes.PermissionDenied, msg: "go away",
		},
		{
			name: "unimplemented",
			call: func() error {
				_, err := tc.EmptyCall(ctx, &testgrpc.Empty{})
				return err
			},
			want: codes.Unimplemented,
		},
	}
	for _, ec := range errorCases {
		t.Run(ec.name, func(t *testing.T) {
			err := ec.call()
			st, _ := status.FromError(err)
			if st.Code() != ec.want || (ec.msg != "" && st.Message() != ec.msg) {
				t.Errorf("status %v %q, want %v %q", st.Code(), st.Message(), ec.want, ec.msg)
			}
		})
	}
	t.Run("server streaming", func(t *testing.T) {
		sizes := []int32{1, 10, 100000}
		var params []*testgrpc.ResponseParameters
		for _, s := range sizes {
			params = append(params, &testgrpc.ResponseParameters{Size: s})
		}
		stream, err := tc.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range sizes {
			m, err := stream.Recv()
			if err != nil || int32(len(m.GetPayload().GetBody())) != s {
				t.Fatalf("message %d: %d bytes, %v", i, len(m.GetPayload().GetBody()), err)
			}
		}
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("end of stream: %v", err)
		}
	})
	t.Run("health watch", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		w, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{Service: "svc"})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first: %v %v", m, err)
		}
		hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
		if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("second: %v %v", m, err)
		}
		hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	})
	t.Run("bidirectional", func(t *testing.T) {
		stream, err := tc.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each reply must arrive before the next request is sent: the proxy has to relay
		// the response while the request is still open.
		for i, size := range []int32{3, 70000, 5} {
			req := &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: size}}}
			if err := stream.Send(req); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			m, err := stream.Recv()
			if err != nil || int32(len(m.GetPayload().GetBody())) != size {
				t.Fatalf("reply %d: %d bytes, %v", i, len(m.GetPayload().GetBody()), err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != io.EOF {
			t.Errorf("end of stream: %v", err)
		}
	})
	t.Run("bidirectional error status", func(t *testing.T) {
		stream, err := tc.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		stream.Send(&testgrpc.StreamingOutputCallRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.Aborted), Message: "stop"}})
		_, err = stream.Recv()
		if st, _ := status.FromError(err); st.Code() != codes.Aborted || st.Message() != "stop" {
			t.Errorf("status %v", err)
		}
	})
	t.Run("client cancels a stream", func(t *testing.T) {
		sctx, scancel := context.WithCancel(ctx)
		stream, err := tc.FullDuplexCall(sctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}}})
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		scancel()
		if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
			t.Errorf("after cancel: %v", err)
		}
	})
}

func TestHTTP2UpstreamRequestTrailers(t *testing.T) {
	checkGoroutines(t)
	up := serveH2C(t, echoHandler("h2"))
	cl := staticCluster(t, "h2", up)
	cl.Protocol = model.UpstreamHTTP2
	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{cl},
		routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "h2"})},
	})
	// The trailer is announced: Go's server keeps only announced trailers.
	resp, body := rawExchange(t, p.addr, "POST /t HTTP/1.1\r\nHost: h\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 42\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, w := range []string{"proto=HTTP/2.0", "body=abc", "trailer:x-checksum=42"} {
		if !strings.Contains(body, w) {
			t.Errorf("upstream saw no %q:\n%s", w, body)
		}
	}
}
