package ratelimit_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nuncio-gw/nuncio/internal/ratelimit"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis/redistest"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func limitFile(n int) string {
	return "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: " + strconv.Itoa(n) + "}\n"
}

type running struct {
	client  rlsv3.RateLimitServiceClient
	health  healthpb.HealthClient
	metrics string
	stop    context.CancelFunc
	done    chan error
}

func start(t *testing.T, o ratelimit.Options) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]net.Addr, 1)
	o.Ready = func(g, m net.Addr) { ready <- [2]net.Addr{g, m} }
	o.Listen = "127.0.0.1:0"
	o.Metrics = "127.0.0.1:0"
	r := &running{stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- ratelimit.Run(ctx, o) }()
	var addrs [2]net.Addr
	select {
	case addrs = <-ready:
	case err := <-r.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not serving after 10s")
	}
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	cc, err := grpc.NewClient(addrs[0].String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	r.client = rlsv3.NewRateLimitServiceClient(cc)
	r.health = healthpb.NewHealthClient(cc)
	r.metrics = "http://" + addrs[1].String() + "/metrics"
	return r
}

func remaining(t *testing.T, c rlsv3.RateLimitServiceClient, value string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlcommonv3.RateLimitDescriptor{
		{Entries: []*rlcommonv3.RateLimitDescriptor_Entry{{Key: "k", Value: value}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Statuses[0].LimitRemaining
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "d.yaml")
	write(t, file, limitFile(5))
	srv := redistest.Start(t)
	r := start(t, ratelimit.Options{ConfigDir: dir, Watch: true, Redis: srv.Addr(), Algorithm: limiter.Sliding})

	if got := remaining(t, r.client, "a"); got != 4 {
		t.Fatalf("remaining = %d, want 4", got)
	}
	// waitFor polls (bounded) until the service answers as the new config says.
	waitFor := func(t *testing.T, want uint32) {
		t.Helper()
		wait.For(t, fmt.Sprintf("the config applied (remaining %d)", want), func() bool {
			return remaining(t, r.client, "v"+time.Now().Format(time.RFC3339Nano)) == want
		})
	}
	write(t, file, limitFile(8))
	waitFor(t, 7)

	// A broken file: the service keeps the limit of 8 and counts the rejection.
	write(t, file, "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: fortnight}\n")
	wait.For(t, "config_load_error counted", func() bool {
		return strings.Contains(get(t, r.metrics), "ratelimit_service_config_load_error 1\n")
	})
	if got := remaining(t, r.client, "b"); got != 7 {
		t.Errorf("after a bad file: remaining = %d, want 7 (the last good config)", got)
	}
	write(t, file, limitFile(3))
	waitFor(t, 2)

	if m := get(t, r.metrics); !strings.Contains(m, `ratelimit_service_rate_limit_total_hits{key="d.k"}`) {
		t.Errorf("metrics lack total_hits:\n%s", m)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunHealthAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "d.yaml"), limitFile(5))
	r := start(t, ratelimit.Options{ConfigDir: dir}) // in memory
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"", "envoy.service.ratelimit.v3.RateLimitService"} {
		resp, err := r.health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v; want SERVING", name, resp, err)
		}
	}
	if got := remaining(t, r.client, "x"); got != 4 {
		t.Errorf("remaining = %d, want 4", got)
	}
	r.stop()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run after stop: %v", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of stop")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bad.yaml"), "domain: d\nbogus: true\n")
	err := ratelimit.Run(context.Background(), ratelimit.Options{ConfigDir: dir, Listen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:2: bogus: unknown field") {
		t.Errorf("err = %v", err)
	}
}
