package service_test

import (
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/config"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis/redistest"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/service"
)

const rules = `
domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: remote_address
    value: 10.0.0.66
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: user
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
  - key: internal
    rate_limit: {unlimited: true}
  - key: path
    value: /a
    rate_limit: {name: path_a, unit: hour, requests_per_unit: 1}
  - key: vip
    rate_limit: {unit: hour, requests_per_unit: 100, replaces: [{name: path_a}]}
  - key: detailed
    detailed_metric: true
    rate_limit: {unit: minute, requests_per_unit: 10}
`

func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	f, err := config.Parse("rules.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Build([]*config.File{f})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve runs svc on a loopback gRPC server and returns a client to it.
func serve(t testing.TB, svc rlsv3.RateLimitServiceServer) rlsv3.RateLimitServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, svc)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return rlsv3.NewRateLimitServiceClient(cc)
}

func desc(kv ...string) *rlcommonv3.RateLimitDescriptor {
	d := &rlcommonv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &rlcommonv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func req(descs ...*rlcommonv3.RateLimitDescriptor) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: descs}
}

type wantStatus struct {
	code      rlsv3.RateLimitResponse_Code
	limit     int64 // requests_per_unit of current_limit; -1 for none
	remaining uint32
}

var (
	ok   = rlsv3.RateLimitResponse_OK
	over = rlsv3.RateLimitResponse_OVER_LIMIT
)

func TestShouldRateLimit(t *testing.T) {
	// 20s into a minute, 20 minutes into an hour.
	now := time.Date(2026, 1, 2, 3, 20, 20, 0, time.UTC)
	svc := service.New(service.Options{Backend: limiter.NewMemory(limiter.Fixed), ResponseHeaders: true, Now: func() time.Time { return now }})
	client := serve(t, svc)
	ctx := context.Background()

	if _, err := client.ShouldRateLimit(ctx, req(desc("remote_address", "1"))); status.Code(err) != codes.Unavailable {
		t.Fatalf("before any config: err = %v, want Unavailable", err)
	}
	svc.SetConfig(mustConfig(t, rules))

	withAddend := func(r *rlsv3.RateLimitRequest, n uint32) *rlsv3.RateLimitRequest { r.HitsAddend = n; return r }
	checkOnly := desc("remote_address", "10.0.0.2")
	checkOnly.HitsAddend = wrapperspb.UInt64(0)
	override := desc("remote_address", "10.0.0.9")
	override.Limit = &rlcommonv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 1, Unit: typev3.RateLimitUnit_SECOND}

	steps := []struct {
		name        string
		req         *rlsv3.RateLimitRequest
		wantCode    codes.Code
		wantOverall rlsv3.RateLimitResponse_Code
		want        []wantStatus
		// wantHeaders is limit/remaining/reset, empty for none.
		wantHeaders []string
	}{
		{name: "no domain", req: &rlsv3.RateLimitRequest{Descriptors: []*rlcommonv3.RateLimitDescriptor{desc("a", "b")}}, wantCode: codes.InvalidArgument},
		{name: "no descriptors", req: req(), wantCode: codes.InvalidArgument},
		{name: "unknown domain", req: &rlsv3.RateLimitRequest{Domain: "x", Descriptors: []*rlcommonv3.RateLimitDescriptor{desc("remote_address", "1")}},
			wantOverall: ok, want: []wantStatus{{code: ok, limit: -1}}},
		{name: "no matching rule", req: req(desc("nothing", "1")), wantOverall: ok, want: []wantStatus{{code: ok, limit: -1}}},
		{name: "first hit", req: req(desc("remote_address", "10.0.0.1")), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 3, remaining: 2}}, wantHeaders: []string{"3", "2", "40"}},
		{name: "hits_addend", req: withAddend(req(desc("remote_address", "10.0.0.1")), 2), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 3, remaining: 0}}, wantHeaders: []string{"3", "0", "40"}},
		{name: "over", req: req(desc("remote_address", "10.0.0.1")), wantOverall: over,
			want: []wantStatus{{code: over, limit: 3, remaining: 0}}, wantHeaders: []string{"3", "0", "40"}},
		{name: "another address has its own count", req: req(desc("remote_address", "10.0.0.2")), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 3, remaining: 2}}, wantHeaders: []string{"3", "2", "40"}},
		{name: "per-descriptor hits_addend 0 only checks", req: req(checkOnly), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 3, remaining: 2}}, wantHeaders: []string{"3", "2", "40"}},
		{name: "value rule of 0 blocks", req: req(desc("remote_address", "10.0.0.66")), wantOverall: over,
			want: []wantStatus{{code: over, limit: 0, remaining: 0}}, wantHeaders: []string{"0", "0", "40"}},
		{name: "one descriptor over makes the request over", req: req(desc("remote_address", "10.0.0.3"), desc("remote_address", "10.0.0.1")), wantOverall: over,
			want: []wantStatus{{code: ok, limit: 3, remaining: 2}, {code: over, limit: 3, remaining: 0}}, wantHeaders: []string{"3", "0", "40"}},
		{name: "shadow mode within", req: req(desc("user", "u")), wantOverall: ok, want: []wantStatus{{code: ok, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "40"}},
		{name: "shadow mode over is let through", req: req(desc("user", "u")), wantOverall: ok, want: []wantStatus{{code: ok, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "40"}},
		{name: "unlimited", req: req(desc("internal", "x")), wantOverall: ok, want: []wantStatus{{code: ok, limit: -1, remaining: math.MaxUint32}}},
		{name: "replaced limit first alone", req: req(desc("path", "/a")), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "2380"}},
		{name: "replaced limit over alone", req: req(desc("path", "/a")), wantOverall: over,
			want: []wantStatus{{code: over, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "2380"}},
		{name: "replacing limit drops it", req: req(desc("path", "/a"), desc("vip", "v")), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: -1}, {code: ok, limit: 100, remaining: 99}}, wantHeaders: []string{"100", "99", "2380"}},
		{name: "request's own limit", req: req(override), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "1"}},
		{name: "request's own limit over", req: req(override), wantOverall: over,
			want: []wantStatus{{code: over, limit: 1, remaining: 0}}, wantHeaders: []string{"1", "0", "1"}},
		{name: "detailed metric", req: req(desc("detailed", "d1")), wantOverall: ok,
			want: []wantStatus{{code: ok, limit: 10, remaining: 9}}, wantHeaders: []string{"10", "9", "40"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			resp, err := client.ShouldRateLimit(ctx, s.req)
			if status.Code(err) != s.wantCode {
				t.Fatalf("err = %v, want code %v", err, s.wantCode)
			}
			if err != nil {
				return
			}
			if resp.OverallCode != s.wantOverall {
				t.Errorf("overall = %v, want %v", resp.OverallCode, s.wantOverall)
			}
			if len(resp.Statuses) != len(s.want) {
				t.Fatalf("%d statuses, want %d", len(resp.Statuses), len(s.want))
			}
			for i, w := range s.want {
				st := resp.Statuses[i]
				limit := int64(-1)
				if st.CurrentLimit != nil {
					limit = int64(st.CurrentLimit.RequestsPerUnit)
					if st.DurationUntilReset == nil {
						t.Errorf("status %d: no duration_until_reset", i)
					}
				}
				if st.Code != w.code || limit != w.limit || st.LimitRemaining != w.remaining {
					t.Errorf("status %d = %v limit %d remaining %d, want %v limit %d remaining %d",
						i, st.Code, limit, st.LimitRemaining, w.code, w.limit, w.remaining)
				}
			}
			var got []string
			for _, h := range resp.ResponseHeadersToAdd {
				got = append(got, h.Value)
			}
			if strings.Join(got, " ") != strings.Join(s.wantHeaders, " ") {
				t.Errorf("headers = %v, want %v", resp.ResponseHeadersToAdd, s.wantHeaders)
			}
		})
	}

	var b strings.Builder
	if err := svc.Stats().WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`ratelimit_service_rate_limit_total_hits{key="edge.remote_address"} 7`,
		`ratelimit_service_rate_limit_over_limit{key="edge.remote_address"} 2`,
		`ratelimit_service_rate_limit_near_limit{key="edge.remote_address"} 1`,
		`ratelimit_service_rate_limit_within_limit{key="edge.remote_address"} 5`,
		`ratelimit_service_rate_limit_shadow_mode{key="edge.user"} 1`,
		`ratelimit_service_rate_limit_total_hits{key="edge.internal"} 1`,
		`ratelimit_service_rate_limit_total_hits{key="edge.detailed_d1"} 1`,
		`ratelimit_service_rate_limit_total_hits{key="edge.remote_address_10.0.0.9"} 2`,
	} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
}

func startRedisService(t testing.TB, addr string, alg limiter.Algorithm) rlsv3.RateLimitServiceClient {
	be := redis.New(redis.Options{Addr: addr, Algorithm: alg, Timeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = be.Close() })
	svc := service.New(service.Options{Backend: be})
	svc.SetConfig(mustConfig(t, rules))
	return serve(t, svc)
}

// Two service replicas on one Redis enforce one limit between them.
func TestReplicasShareRedis(t *testing.T) {
	srv := redistest.Start(t)
	for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
		t.Run(alg.String(), func(t *testing.T) {
			a, b := startRedisService(t, srv.Addr(), alg), startRedisService(t, srv.Addr(), alg)
			addr := "shared-" + alg.String() + "-" + time.Now().Format(time.RFC3339Nano)
			var codes []rlsv3.RateLimitResponse_Code
			for i := 0; i < 5; i++ {
				c := a
				if i%2 == 1 {
					c = b
				}
				resp, err := c.ShouldRateLimit(context.Background(), req(desc("remote_address", addr)))
				if err != nil {
					t.Fatal(err)
				}
				codes = append(codes, resp.OverallCode)
			}
			want := []rlsv3.RateLimitResponse_Code{ok, ok, ok, over, over}
			for i := range want {
				if codes[i] != want[i] {
					t.Fatalf("codes = %v, want %v", codes, want)
				}
			}
		})
	}
}

// callBounded fails the test on a call that does not return: a hang, not a slow answer.
func callBounded(t *testing.T, c rlsv3.RateLimitServiceClient, r *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.ShouldRateLimit(ctx, r)
	if status.Code(err) == codes.DeadlineExceeded {
		t.Fatal("call did not return within 10s")
	}
	return resp, err
}

func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	client := startRedisService(t, srv.Addr(), limiter.Fixed)
	r := req(desc("remote_address", "down-"+time.Now().Format(time.RFC3339Nano)))
	if _, err := callBounded(t, client, r); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for i := 0; i < 3; i++ {
		if _, err := callBounded(t, client, r); status.Code(err) != codes.Unavailable {
			t.Fatalf("redis killed, call %d: err = %v, want Unavailable", i, err)
		}
	}
	srv.Restart()
	resp, err := callBounded(t, client, r)
	if err != nil {
		t.Fatalf("redis back: %v", err)
	}
	// The restarted Redis is empty: the count starts again.
	if st := resp.Statuses[0]; st.Code != ok || st.LimitRemaining != 2 {
		t.Errorf("after restart: %v remaining %d, want OK remaining 2", st.Code, st.LimitRemaining)
	}
}

// Concurrent requests through both replicas: exactly the limit is let through, every hit counted.
func TestConcurrentExact(t *testing.T) {
	srv := redistest.Start(t)
	const limit, workers, each = 40, 8, 10
	cfg := mustConfig(t, "domain: edge\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 40}\n")
	var clients []rlsv3.RateLimitServiceClient
	var svcs []*service.Service
	for i := 0; i < 2; i++ {
		be := redis.New(redis.Options{Addr: srv.Addr(), Timeout: 5 * time.Second})
		t.Cleanup(func() { _ = be.Close() })
		svc := service.New(service.Options{Backend: be})
		svc.SetConfig(cfg)
		svcs = append(svcs, svc)
		clients = append(clients, serve(t, svc))
	}
	value := "c-" + time.Now().Format(time.RFC3339Nano)
	var mu sync.Mutex
	allowed, errs := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(c rlsv3.RateLimitServiceClient) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := c.ShouldRateLimit(context.Background(), req(desc("k", value)))
				mu.Lock()
				if err != nil {
					errs++
				} else if resp.OverallCode == ok {
					allowed++
				}
				mu.Unlock()
			}
		}(clients[w%2])
	}
	wg.Wait()
	if errs != 0 || allowed != limit {
		t.Errorf("%d of %d requests allowed (%d errors), want exactly %d", allowed, workers*each, errs, limit)
	}
	var total uint64
	for _, s := range svcs {
		total += s.Stats().Key("edge.k").TotalHits.Load()
	}
	if total != workers*each {
		t.Errorf("total_hits = %d, want %d", total, workers*each)
	}
}

func benchmarkService(b *testing.B, be limiter.Backend) {
	svc := service.New(service.Options{Backend: be, ResponseHeaders: true})
	svc.SetConfig(mustConfig(b, rules))
	r := req(desc("remote_address", "10.1.2.3"), desc("path", "/b"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.ShouldRateLimit(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkShouldRateLimit(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchmarkService(b, limiter.NewMemory(limiter.Fixed)) })
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		be := redis.New(redis.Options{Addr: srv.Addr()})
		defer be.Close()
		benchmarkService(b, be)
	})
}
