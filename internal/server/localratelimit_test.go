package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/localratelimit"
)

// localRateLimitYAML is a bootstrap whose listener limits requests with the local_ratelimit
// filter: a default bucket of 2 (refilled hourly, so never within the test), a route with
// its own bucket of 1, a route with a bucket per x-client header value, a route whose limit
// is checked but not enforced, and a listener with a bucket per connection. Every route goes
// to a real upstream that echoes the x-limited request header.
func localRateLimitYAML(upPort, logPath string) string {
	const lrl = `"@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: limited
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: lrl_ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %[2]s
              log_format: {text_format_source: {inline_string: "%%REQ(:PATH)%% %%RESPONSE_CODE%% %%RESPONSE_FLAGS%%\n"}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: /route}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    %[3]s
                    stat_prefix: route
                    token_bucket: {max_tokens: 1, fill_interval: 3600s}
                    filter_enabled: {default_value: {numerator: 100}}
                    filter_enforced: {default_value: {numerator: 100}}
                    status: {code: 503}
                route: {cluster: upstream}
              - match: {path: /client}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    %[3]s
                    stat_prefix: client
                    token_bucket: {max_tokens: 1000, fill_interval: 3600s}
                    filter_enabled: {default_value: {numerator: 100}}
                    filter_enforced: {default_value: {numerator: 100}}
                    rate_limits: [{actions: [{request_headers: {header_name: x-client, descriptor_key: client}}]}]
                    descriptors:
                    - entries: [{key: client, value: vip}]
                      token_bucket: {max_tokens: 3, fill_interval: 3600s}
                    - entries: [{key: client}]
                      token_bucket: {max_tokens: 1, fill_interval: 3600s}
                route: {cluster: upstream}
              - match: {path: /shadow}
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    %[3]s
                    stat_prefix: shadow
                    token_bucket: {max_tokens: 1, fill_interval: 3600s}
                    filter_enabled: {default_value: {numerator: 100}}
                    request_headers_to_add_when_not_enforced: [{header: {key: x-limited, value: "yes"}}]
                route: {cluster: upstream}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              %[3]s
              stat_prefix: default
              token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 3600s}
              filter_enabled: {default_value: {numerator: 100}}
              filter_enforced: {default_value: {numerator: 100}}
              response_headers_to_add: [{header: {key: x-refused-by, value: local}}]
              enable_x_ratelimit_headers: DRAFT_VERSION_03
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  - name: per-connection
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: lrl_conn
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: /}, route: {cluster: upstream}}]
          http_filters:
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              %[3]s
              stat_prefix: per_conn
              token_bucket: {max_tokens: 1, fill_interval: 3600s}
              filter_enabled: {default_value: {numerator: 100}}
              filter_enforced: {default_value: {numerator: 100}}
              local_rate_limit_per_downstream_connection: true
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[1]s}}}}]}]
`, upPort, logPath, lrl)
}

// TestLocalRateLimit runs the local_ratelimit filter through a real listener to a real
// upstream: the chain's bucket, a route's own bucket, descriptors with a fixed and a dynamic
// value, a limit checked but not enforced, and a bucket per connection.
func TestLocalRateLimit(t *testing.T) {
	// No leak check: the file access log's writer and reopen-signal watcher are process-wide.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream"+r.Header.Get("x-limited"))
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	logPath := filepath.Join(t.TempDir(), "access.log")
	s := newTestServer(t, Options{})
	t.Cleanup(func() { s.shutdown() })
	if err := apply(t, s, localRateLimitYAML(port, logPath)); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, false)
	type want struct {
		status          int
		body            string
		limit, remained string // x-ratelimit-limit and -remaining, "" for none
		refusedBy       string
	}
	do := func(t *testing.T, c *http.Client, listener, path, clientID string, w want) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addrOf(s, listener)+path, nil)
		if clientID != "" {
			req.Header.Set("x-client", clientID)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := want{status: resp.StatusCode, body: string(b), limit: resp.Header.Get("x-ratelimit-limit"),
			remained: resp.Header.Get("x-ratelimit-remaining"), refusedBy: resp.Header.Get("x-refused-by")}
		if got != w {
			t.Errorf("%s %s: got %+v, want %+v", listener, path, got, w)
		}
	}
	refused := func(status int) want {
		return want{status: status, body: "local_rate_limited"}
	}
	for _, tc := range []struct {
		name     string
		listener string
		path     string
		clientID string
		keep     bool // reuse one connection for the requests
		want     []want
	}{
		{name: "chain bucket of 2", listener: "limited", path: "/",
			want: []want{{status: 200, body: "upstream", limit: "2", remained: "1"}, {status: 200, body: "upstream", limit: "2", remained: "0"},
				{status: 429, body: "local_rate_limited", limit: "2", remained: "0", refusedBy: "local"}}},
		{name: "route bucket of 1 replaces the chain's", listener: "limited", path: "/route",
			want: []want{{status: 200, body: "upstream"}, refused(503)}},
		{name: "dynamic descriptor a", listener: "limited", path: "/client", clientID: "a",
			want: []want{{status: 200, body: "upstream"}, refused(429)}},
		{name: "dynamic descriptor b has its own bucket", listener: "limited", path: "/client", clientID: "b",
			want: []want{{status: 200, body: "upstream"}, refused(429)}},
		{name: "fixed descriptor vip", listener: "limited", path: "/client", clientID: "vip",
			want: []want{{status: 200, body: "upstream"}, {status: 200, body: "upstream"}, {status: 200, body: "upstream"}, refused(429)}},
		{name: "not enforced passes marked", listener: "limited", path: "/shadow",
			want: []want{{status: 200, body: "upstream"}, {status: 200, body: "upstreamyes"}}},
		{name: "first connection", listener: "per-connection", path: "/", keep: true,
			want: []want{{status: 200, body: "upstream"}, refused(429)}},
		{name: "second connection has its own bucket", listener: "per-connection", path: "/", keep: true,
			want: []want{{status: 200, body: "upstream"}, refused(429)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := client
			if tc.keep {
				c = newClient(t, true)
			}
			for _, w := range tc.want {
				do(t, c, tc.listener, tc.path, tc.clientID, w)
			}
		})
	}
	for name, wantV := range map[string]int64{
		"http.lrl_ingress.default.http_local_rate_limit.enabled":      15,
		"http.lrl_ingress.default.http_local_rate_limit.ok":           9,
		"http.lrl_ingress.default.http_local_rate_limit.rate_limited": 6,
		"http.lrl_ingress.default.http_local_rate_limit.enforced":     5,
		"http.lrl_conn.per_conn.http_local_rate_limit.enforced":       2,
	} {
		if v, _ := statValue(stats.Default, name); v != wantV {
			t.Errorf("%s = %d, want %d", name, v, wantV)
		}
	}
	// Connection managers count in the process-wide store. The access log line is written when the stream ends, after the response.
	var log string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(logPath)
		if log = string(b); strings.Count(log, "\n") >= 14 {
			break
		}
	}
	if !strings.Contains(log, "/ 429 RL\n") || !strings.Contains(log, "/route 503 RL\n") || !strings.Contains(log, "/ 200 -\n") {
		t.Errorf("access log lacks the RL flag:\n%s", log)
	}
}
