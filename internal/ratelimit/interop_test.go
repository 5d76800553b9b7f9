package ratelimit_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nuncio-gw/nuncio/internal/ratelimit"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis/redistest"
)

// envoyRatelimitVersion is the envoyproxy/ratelimit build docs/testing.md describes.
const envoyRatelimitVersion = "v1.4.1-0.20260122083618-3fb702589d36"

func envoyRatelimitBinary(t *testing.T) string {
	if p := os.Getenv("ENVOY_RATELIMIT"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "nuncio", "envoy-ratelimit-"+envoyRatelimitVersion, runtime.Version(), "service_cmd")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("envoyproxy/ratelimit not built (%s): see docs/testing.md", p)
	}
	return p
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startEnvoyRatelimit runs envoyproxy/ratelimit on loopback with rules and Redis at redisAddr,
// and returns its gRPC address.
func startEnvoyRatelimit(t *testing.T, rules, redisAddr string) string {
	bin := envoyRatelimitBinary(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "rl", "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "rl", "config", "rules.yaml"), rules)
	httpPort, grpcPort := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"HOST=127.0.0.1", "PORT="+httpPort, "DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+freePort(t),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+grpcPort, "USE_STATSD=false", "LOG_LEVEL=warn",
		"RUNTIME_ROOT="+root, "RUNTIME_SUBDIRECTORY=rl", "RUNTIME_WATCH_ROOT=false",
		"REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+redisAddr)
	log, err := os.Create(filepath.Join(root, "ratelimit.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	for i := 0; ; i++ {
		resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthcheck")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 200 {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("envoyproxy/ratelimit not healthy after 20s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "127.0.0.1:" + grpcPort
}

// Both services on one Redis, with the fixed algorithm, count the same limit: rule files and
// counters carry over from one to the other.
func TestSharedCountersWithEnvoyRatelimit(t *testing.T) {
	const rules = "domain: d\ndescriptors:\n  - key: k\n    rate_limit: {unit: hour, requests_per_unit: 3}\n"
	srv := redistest.Start(t)
	envoyAddr := startEnvoyRatelimit(t, rules, srv.Addr())
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), rules)
	ours := start(t, ratelimit.Options{ConfigDir: dir, Redis: srv.Addr(), Algorithm: limiter.Fixed})

	cc, err := grpc.NewClient(envoyAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	clients := []rlsv3.RateLimitServiceClient{ours.client, rlsv3.NewRateLimitServiceClient(cc)}
	value := "v" + strconv.FormatInt(time.Now().UnixNano(), 10)
	want := []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK,
		rlsv3.RateLimitResponse_OVER_LIMIT, rlsv3.RateLimitResponse_OVER_LIMIT}
	for i, w := range want {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := clients[i%2].ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "d", Descriptors: []*rlcommonv3.RateLimitDescriptor{
			{Entries: []*rlcommonv3.RateLimitDescriptor_Entry{{Key: "k", Value: value}}},
		}})
		cancel()
		if err != nil {
			t.Fatalf("call %d (%s): %v", i+1, []string{"nuncio", "envoyproxy"}[i%2], err)
		}
		if resp.OverallCode != w {
			t.Errorf("call %d (%s): %v, want %v", i+1, []string{"nuncio", "envoyproxy"}[i%2], resp.OverallCode, w)
		}
	}
}
