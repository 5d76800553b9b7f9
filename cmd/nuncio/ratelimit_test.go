package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis/redistest"
)

func TestRatelimitUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("domain: d\ndescriptors: [{key: k, rate_limit: {unit: eon}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "no config dir", args: []string{"ratelimit"}, wantCode: 2, wantStderr: "usage: nuncio ratelimit --config-dir DIR"},
		{name: "bad algorithm", args: []string{"ratelimit", "--config-dir", dir, "--algorithm", "leaky"}, wantCode: 2, wantStderr: `algorithm "leaky": want fixed or sliding`},
		{name: "bad config", args: []string{"ratelimit", "--config-dir", dir, "--listen", "127.0.0.1:0"}, wantCode: 1,
			wantStderr: "bad.yaml:2: descriptors[0].rate_limit.unit: \"eon\" is not one of"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkExit(t, tc.args, tc.wantCode, tc.wantStderr) })
	}
}

// TestRatelimitServes runs the ratelimit command against a real Redis, asks it over gRPC and
// stops it with SIGTERM, as a process manager would.
func TestRatelimitServes(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "d.yaml"), []byte("domain: d\ndescriptors: [{key: k, rate_limit: {unit: minute, requests_per_unit: 1}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- realMain([]string{"ratelimit", "--config-dir", dir, "--redis", srv.Addr(), "--listen", addr, "--algorithm", "sliding"}, &bytes.Buffer{}, &stderr)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := rlsv3.NewRateLimitServiceClient(cc)
	r := &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlcommonv3.RateLimitDescriptor{
		{Entries: []*rlcommonv3.RateLimitDescriptor_Entry{{Key: "k", Value: time.Now().Format(time.RFC3339Nano)}}},
	}}
	var codes []rlsv3.RateLimitResponse_Code
	for len(codes) < 2 {
		resp, err := client.ShouldRateLimit(ctx, r, grpc.WaitForReady(true))
		if err != nil {
			select {
			case code := <-done:
				t.Fatalf("ratelimit exited with %d:\n%s", code, stderr.String())
			default:
			}
			t.Fatal(err)
		}
		codes = append(codes, resp.OverallCode)
	}
	if codes[0] != rlsv3.RateLimitResponse_OK || codes[1] != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Errorf("codes = %v, want [OK OVER_LIMIT]", codes)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM:\n%s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("ratelimit did not stop on SIGTERM")
	}
}
