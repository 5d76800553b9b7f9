package health

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func fastConfig(kind model.HealthCheckKind) *model.HealthCheck {
	return &model.HealthCheck{
		Kind: kind, Timeout: time.Second, Interval: 5 * time.Millisecond,
		UnhealthyThreshold: 2, HealthyThreshold: 2,
	}
}

// host records the verdicts one host receives.
type host struct {
	failed  atomic.Bool
	calls   atomic.Int32
	passed  atomic.Int32
	timeout atomic.Bool
}

func (h *host) hooks() Hooks {
	h.failed.Store(true) // pending until the first check, as the cluster marks it
	return Hooks{
		SetFailed: func(f, timeout bool) { h.failed.Store(f); h.timeout.Store(timeout); h.calls.Add(1) },
		Passed:    func() { h.passed.Add(1) },
	}
}

type rig struct {
	c     *Checker
	store *stats.Store
}

func newRig(t *testing.T, cfg *model.HealthCheck) *rig {
	r := &rig{store: stats.NewStore()}
	var err error
	r.c, err = New(cfg, Options{Cluster: "backend", Scope: r.store.Scope("cluster.backend")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	return r
}

func (r *rig) stat(name string) int64 {
	for _, s := range r.store.All() {
		if s.Name == "cluster.backend.health_check."+name {
			return s.Value
		}
	}
	return 0
}

// flipServer answers the health path with 200 or 503 as told, and records requests.
type flipServer struct {
	address string
	code    atomic.Int32
	mu      sync.Mutex
	last    *http.Request
}

func newFlipServer(t *testing.T) *flipServer {
	s := &flipServer{}
	s.code.Store(200)
	s.address = loopback.HTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.last = r
		s.mu.Unlock()
		w.WriteHeader(int(s.code.Load()))
	}))
	return s
}

func (s *flipServer) addr() string { return s.address }

func TestHTTPCheck(t *testing.T) {
	leak.Check(t)
	srv := newFlipServer(t)
	cfg := fastConfig(model.HealthCheckHTTP)
	cfg.HTTP = &model.HTTPHealthCheck{
		Path:           "/healthz",
		RequestHeaders: []model.HeaderValue{{Name: "x-check", Value: "1"}},
	}
	r := newRig(t, cfg)
	var h host
	r.c.Add("a", srv.addr(), h.hooks())
	if err := r.c.WaitFirst(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.failed.Load() {
		t.Fatal("host failed after a passing first check")
	}
	srv.mu.Lock()
	req := srv.last
	srv.mu.Unlock()
	if req.URL.Path != "/healthz" || req.Host != "backend" || req.Header.Get("x-check") != "1" || req.UserAgent() != "Envoy/HC" {
		t.Errorf("request: path %q host %q x-check %q user-agent %q", req.URL.Path, req.Host, req.Header.Get("x-check"), req.UserAgent())
	}

	srv.code.Store(503)
	wait.For(t, "unhealthy", h.failed.Load)
	srv.code.Store(200)
	wait.For(t, "healthy again", func() bool { return !h.failed.Load() })
	if got := h.calls.Load(); got != 3 {
		t.Errorf("%d verdict changes, want 3 (healthy, unhealthy, healthy)", got)
	}
	if r.stat("attempt") < 5 || r.stat("success") == 0 || r.stat("failure") < 2 {
		t.Errorf("stats: attempt %d success %d failure %d", r.stat("attempt"), r.stat("success"), r.stat("failure"))
	}
	if r.stat("healthy") != 1 {
		t.Errorf("healthy gauge %d, want 1", r.stat("healthy"))
	}
	r.c.Close()
	if r.stat("healthy") != 0 {
		t.Errorf("healthy gauge %d after Close, want 0", r.stat("healthy"))
	}
}

func TestHTTPThresholds(t *testing.T) {
	leak.Check(t)
	srv := newFlipServer(t)
	cfg := fastConfig(model.HealthCheckHTTP)
	cfg.HTTP = &model.HTTPHealthCheck{Path: "/"}
	cfg.UnhealthyThreshold, cfg.HealthyThreshold = 3, 4
	r := newRig(t, cfg)
	var h host
	r.c.Add("a", srv.addr(), h.hooks())
	r.c.WaitFirst(context.Background())
	srv.code.Store(500)
	failuresBefore := r.stat("failure")
	wait.For(t, "unhealthy", h.failed.Load)
	if n := r.stat("failure") - failuresBefore; n < 3 {
		t.Errorf("unhealthy after %d failures, want at least 3", n)
	}
	srv.code.Store(200)
	successBefore := r.stat("success")
	wait.For(t, "healthy", func() bool { return !h.failed.Load() })
	if n := r.stat("success") - successBefore; n < 4 {
		t.Errorf("healthy after %d passes, want at least 4", n)
	}
}

func TestExpectedStatuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ranges []model.StatusRange
		code   int
		want   bool
	}{
		{name: "default 200", code: 200, want: true},
		{name: "default 204", code: 204, want: false},
		{name: "range", ranges: []model.StatusRange{{Start: 200, End: 300}}, code: 204, want: true},
		{name: "end excluded", ranges: []model.StatusRange{{Start: 200, End: 300}}, code: 300, want: false},
		{name: "second range", ranges: []model.StatusRange{{Start: 200, End: 201}, {Start: 429, End: 430}}, code: 429, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusExpected(tc.ranges, tc.code); got != tc.want {
				t.Errorf("statusExpected = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFirstFailureAndNetworkFailure(t *testing.T) {
	leak.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	cfg := fastConfig(model.HealthCheckHTTP)
	cfg.HTTP = &model.HTTPHealthCheck{Path: "/"}
	r := newRig(t, cfg)
	var h host
	r.c.Add("a", addr, h.hooks())
	r.c.WaitFirst(context.Background())
	if !h.failed.Load() || h.calls.Load() != 1 {
		t.Errorf("failed=%v calls=%d after a failing first check, want failed once", h.failed.Load(), h.calls.Load())
	}
	if r.stat("network_failure") == 0 {
		t.Error("connection refused not counted as network_failure")
	}
}

func tcpServer(t *testing.T, handle func(net.Conn)) string {
	return loopback.Serve(t, func(_ context.Context, c net.Conn) { handle(c) })
}

func TestTCPCheck(t *testing.T) {
	leak.Check(t)
	var answer atomic.Value
	answer.Store("PONG-OK")
	addr := tcpServer(t, func(c net.Conn) {
		buf := make([]byte, 4)
		if _, err := c.Read(buf); err != nil || string(buf) != "PING" {
			return
		}
		s := answer.Load().(string)
		c.Write([]byte(s[:3]))
		c.Write([]byte(s[3:]))
	})
	t.Run("connect only", func(t *testing.T) {
		cfg := fastConfig(model.HealthCheckTCP)
		cfg.TCP = &model.TCPHealthCheck{}
		r := newRig(t, cfg)
		var h host
		r.c.Add("a", addr, h.hooks())
		r.c.WaitFirst(context.Background())
		if h.failed.Load() {
			t.Error("connect-only check failed")
		}
	})
	t.Run("send and receive", func(t *testing.T) {
		cfg := fastConfig(model.HealthCheckTCP)
		cfg.TCP = &model.TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("PO"), []byte("OK")}}
		cfg.Timeout = 200 * time.Millisecond
		r := newRig(t, cfg)
		var h host
		r.c.Add("a", addr, h.hooks())
		r.c.WaitFirst(context.Background())
		if h.failed.Load() {
			t.Fatal("send/receive check failed")
		}
		answer.Store("PONG-NO")
		wait.For(t, "unhealthy on a wrong answer", h.failed.Load)
	})
}

func TestGRPCCheck(t *testing.T) {
	leak.Check(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	var wg sync.WaitGroup
	wg.Go(func() { gs.Serve(ln) })
	defer func() { gs.Stop(); wg.Wait() }()

	cfg := fastConfig(model.HealthCheckGRPC)
	cfg.GRPC = &model.GRPCHealthCheck{ServiceName: "svc"}
	r := newRig(t, cfg)
	var h host
	r.c.Add("a", ln.Addr().String(), h.hooks())
	r.c.WaitFirst(context.Background())
	if h.failed.Load() {
		t.Fatal("gRPC check of a SERVING service failed")
	}
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	wait.For(t, "unhealthy when NOT_SERVING", h.failed.Load)
	hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	wait.For(t, "healthy again", func() bool { return !h.failed.Load() })

	t.Run("unknown service", func(t *testing.T) {
		cfg := fastConfig(model.HealthCheckGRPC)
		cfg.GRPC = &model.GRPCHealthCheck{ServiceName: "nope"}
		r := newRig(t, cfg)
		var h host
		r.c.Add("a", ln.Addr().String(), h.hooks())
		r.c.WaitFirst(context.Background())
		if !h.failed.Load() {
			t.Error("check of an unknown service passed")
		}
		if r.stat("network_failure") != 0 {
			t.Error("NotFound counted as a network failure")
		}
	})
	r.c.Close()
}

func TestRemoveAndWaitFirstBound(t *testing.T) {
	leak.Check(t)
	// A server that accepts and never answers: the first check hangs until its timeout.
	addr := tcpServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	cfg := fastConfig(model.HealthCheckHTTP)
	cfg.HTTP = &model.HTTPHealthCheck{Path: "/"}
	cfg.Timeout = time.Hour
	r := newRig(t, cfg)
	var h host
	r.c.Add("a", addr, h.hooks())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := r.c.WaitFirst(ctx); err == nil {
		t.Error("WaitFirst returned without a verdict")
	}
	r.c.Remove("a") // cancels the hanging check
	if h.calls.Load() != 0 {
		t.Error("a removed host got a verdict")
	}
}

func TestIntervals(t *testing.T) {
	cfg := &model.HealthCheck{
		Interval: 10 * time.Second, NoTrafficInterval: 60 * time.Second, UnhealthyInterval: 20 * time.Second,
		UnhealthyEdgeInterval: 3 * time.Second, HealthyEdgeInterval: 4 * time.Second,
	}
	used := false
	c := &Checker{cfg: *cfg, opts: Options{Used: func() bool { return used }}}
	for _, tc := range []struct {
		name          string
		used, healthy bool
		edge          bool
		want          time.Duration
	}{
		{name: "no traffic", want: 60 * time.Second},
		{name: "healthy", used: true, healthy: true, want: 10 * time.Second},
		{name: "just healthy", used: true, healthy: true, edge: true, want: 4 * time.Second},
		{name: "unhealthy", used: true, want: 20 * time.Second},
		{name: "just unhealthy", used: true, edge: true, want: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			used = tc.used
			h := &hostCheck{c: c, healthy: tc.healthy, edge: tc.edge}
			if got := h.next(); got != tc.want {
				t.Errorf("next = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("jitter", func(t *testing.T) {
		used = true
		c.cfg.IntervalJitter = time.Second
		c.cfg.IntervalJitterPercent = 50
		h := &hostCheck{c: c, healthy: true}
		for range 100 {
			if got := h.next(); got < 10*time.Second || got >= 16*time.Second {
				t.Fatalf("next = %v, want in [10s, 16s)", got)
			}
		}
	})
}
