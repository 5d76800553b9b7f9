package router_test

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// statValues reads counters and gauges from the process-wide store the harness uses.
func statValues() map[string]int64 {
	out := map[string]int64{}
	for _, s := range stats.Default.All() {
		if s.Kind == stats.KindHistogram {
			out[s.Name] = int64(s.Histogram.Count)
			continue
		}
		out[s.Name] = s.Value
	}
	return out
}

// TestEnvoyStatsThroughRequests drives real HTTP/1.1 and HTTP/2 requests through the proxy and
// checks that the connection manager's, the router's and the clusters' stats move as
// Envoy's do, under Envoy's names. The stat prefix and cluster names are the test's own, so
// other tests sharing stats.Default do not disturb the counts.
func TestEnvoyStatsThroughRequests(t *testing.T) {
	checkGoroutines(t)
	up := serveHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		if r.URL.Path == "/created" {
			w.WriteHeader(418) // not a pre-created code: counted through the slow path
			return
		}
		w.Write([]byte("ok"))
	}))
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := dl.Addr().String()
	dl.Close() // nothing listens: connects are refused

	p := newProxy(t, proxyOptions{
		clusters: []*model.Cluster{staticCluster(t, "stats_up", up), staticCluster(t, "stats_dead", dead)},
		routes: []*model.Route{
			{Match: model.RouteMatch{PathKind: model.PathExact, Path: "/direct"}, DirectResponse: &model.DirectResponseAction{Status: 200}},
			{Match: model.RouteMatch{PathKind: model.PathExact, Path: "/redirect"}, Redirect: &model.RedirectAction{PrefixRewrite: "/new", Code: 301}},
			prefixRoute("/slow", &model.RouteAction{Cluster: "stats_up", Timeout: 50 * time.Millisecond}),
			prefixRoute("/dead", &model.RouteAction{Cluster: "stats_dead"}),
			prefixRoute("/nocluster", &model.RouteAction{Cluster: "stats_missing"}),
			prefixRoute("/ok", &model.RouteAction{Cluster: "stats_up"}),
			prefixRoute("/created", &model.RouteAction{Cluster: "stats_up"}),
		},
		hcm: func(m *model.HTTPConnectionManager) { m.StatPrefix = "stats_ingress" },
	})
	base := "http://" + p.addr
	// Stats outlive a test run (-count): compare what this run added.
	before := statValues()
	h1, h2 := h1Client(t), h2cClient(t)
	h1.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		name   string
		client *http.Client
		path   string
		status int
	}{
		{name: "h1 ok", client: h1, path: "/ok", status: 200},
		{name: "h1 ok again", client: h1, path: "/ok", status: 200},
		{name: "h2 ok", client: h2, path: "/ok", status: 200},
		{name: "rare code", client: h1, path: "/created", status: 418},
		{name: "direct response", client: h1, path: "/direct", status: 200},
		{name: "redirect", client: h1, path: "/redirect", status: 301},
		{name: "no route", client: h2, path: "/nowhere", status: 404},
		{name: "no cluster", client: h1, path: "/nocluster", status: 503},
		{name: "connect failure", client: h1, path: "/dead", status: 503},
		{name: "timeout", client: h1, path: "/slow", status: 504},
	} {
		if got, _, _ := get(t, tc.client, base+tc.path, tc.name); got != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.name, got, tc.status)
		}
		// The upstream connection goes back to its pool when the stream ends, just after the
		// client has its response: wait for it, or the next request may open another.
		wait.For(t, "the upstream connection back in its pool", func() bool {
			return statValues()["cluster.stats_up.upstream_rq_active"] == before["cluster.stats_up.upstream_rq_active"]
		})
	}
	// Stream stats are counted when the stream is released, just after the response.
	wait.For(t, "10 streams counted", func() bool {
		return statValues()["http.stats_ingress.downstream_rq_total"]-before["http.stats_ingress.downstream_rq_total"] >= 10
	})
	got := statValues()
	want := map[string]int64{ // growth during the test
		"http.stats_ingress.downstream_rq_total":        10,
		"http.stats_ingress.downstream_rq_2xx":          4,
		"http.stats_ingress.downstream_rq_3xx":          1,
		"http.stats_ingress.downstream_rq_4xx":          2,
		"http.stats_ingress.downstream_rq_5xx":          3,
		"http.stats_ingress.downstream_rq_http1_total":  8,
		"http.stats_ingress.downstream_rq_http2_total":  2,
		"http.stats_ingress.downstream_rq_active":       0,
		"http.stats_ingress.downstream_rq_time":         10,
		"http.stats_ingress.downstream_cx_http1_total":  1,
		"http.stats_ingress.downstream_cx_http2_total":  1,
		"http.stats_ingress.downstream_cx_total":        2,
		"http.stats_ingress.downstream_cx_active":       2,
		"http.stats_ingress.downstream_cx_http1_active": 1,
		"http.stats_ingress.downstream_cx_http2_active": 1,
		"http.stats_ingress.no_route":                   1,
		"http.stats_ingress.no_cluster":                 1,
		"http.stats_ingress.rq_direct_response":         1,
		"http.stats_ingress.rq_redirect":                1,

		"cluster.stats_up.upstream_rq_total":     5,
		"cluster.stats_up.upstream_rq_200":       3,
		"cluster.stats_up.upstream_rq_2xx":       3,
		"cluster.stats_up.upstream_rq_418":       1,
		"cluster.stats_up.upstream_rq_4xx":       1,
		"cluster.stats_up.upstream_rq_timeout":   1,
		"cluster.stats_up.upstream_rq_completed": 4,
		"cluster.stats_up.upstream_rq_time":      4,
		"cluster.stats_up.upstream_rq_active":    0,
		// Every request, the HTTP/2 one included, reused one HTTP/1.1 connection (the
		// cluster's protocol); the timeout, last, closed it.
		"cluster.stats_up.upstream_cx_http1_total": 1,
		"cluster.stats_up.upstream_cx_total":       1,
		"cluster.stats_up.upstream_cx_destroy":     1,
		"cluster.stats_up.upstream_cx_active":      0,

		"cluster.stats_dead.upstream_rq_total":        1,
		"cluster.stats_dead.upstream_cx_connect_fail": 1,
		"cluster.stats_dead.upstream_cx_total":        0,
		"cluster.stats_dead.upstream_rq_completed":    0,
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g-before[name] != v {
			t.Errorf("%s grew by %d (present %v), want %d", name, g-before[name], ok, v)
		}
	}
}

// BenchmarkProxyH1AccessLog is BenchmarkProxyH1 (every stat on) with and without a file
// access log in Envoy's default format: what a request costs with logging on versus off.
func BenchmarkProxyH1AccessLog(b *testing.B) {
	for _, logged := range []bool{false, true} {
		name := "off"
		if logged {
			name = "file"
		}
		b.Run(name, func(b *testing.B) {
			up := fastUpstream(b)
			o := proxyOptions{
				clusters: []*model.Cluster{staticCluster(b, "up", up)},
				routes:   []*model.Route{prefixRoute("/", &model.RouteAction{Cluster: "up"})},
			}
			if logged {
				a, _ := anypb.New(&filev3.FileAccessLog{Path: filepath.Join(b.TempDir(), "access.log")})
				l, err := accesslog.Compile(&accesslogv3.AccessLog{ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, accesslog.Default)
				if err != nil {
					b.Fatal(err)
				}
				o.hcm = func(m *model.HTTPConnectionManager) { m.AccessLogs = []any{l} }
			}
			p := newProxy(b, o)
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			br := bufio.NewReaderSize(c, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if status, err := readResponse(br); err != nil || status != 200 {
					b.Fatalf("status %d, %v", status, err)
				}
			}
		})
	}
}
