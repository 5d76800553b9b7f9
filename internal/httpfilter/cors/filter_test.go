package cors_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/testutil/dataplane"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// bootstrap is a listener whose virtual host has a CorsPolicy, overridden by some routes, in
// front of the cluster "upstream" on port.
func bootstrap(port string) string {
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: cors
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: web
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                  allow_origin_string_match: [{exact: "https://vh.example"}]
              routes:
              - match: {prefix: /open}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_origin_string_match:
                    - {exact: "https://a.example"}
                    - {suffix: ".b.example", ignore_case: true}
                    - {safe_regex: {regex: "https://[0-9]+\\.c\\.example"}}
                    allow_methods: "GET, POST"
                    allow_headers: "x-a, x-b"
                    expose_headers: "x-exp"
                    max_age: "600"
                    allow_credentials: true
                    allow_private_network_access: true
              - match: {prefix: /strict}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_origin_string_match: [{exact: "https://a.example"}]
                    allow_methods: "*"
                    allow_headers: "*"
                    forward_not_matching_preflights: false
              - match: {prefix: /shadow}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_origin_string_match: [{exact: "https://a.example"}]
                    filter_enabled: {default_value: {numerator: 0}}
                    shadow_enabled: {default_value: {numerator: 100}}
              - match: {prefix: /any}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                    allow_origin_string_match: [{exact: "*"}]
                    allow_methods: "GET"
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, port)
}

func TestCORSThroughDataPlane(t *testing.T) {
	leak.Check(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-upstream", r.Method)
		w.Header().Set("vary", "Accept-Encoding")
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	p := dataplane.Start(t, bootstrap(port))
	base := "http://" + p.Addr(t, "cors")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: wait.Timeout}

	for _, tc := range []struct {
		name     string
		method   string
		path     string
		headers  []string
		status   int
		upstream bool              // the upstream answered
		want     map[string]string // response headers; "" means absent
		vary     string            // the Vary values joined
	}{
		{
			name: "preflight from a listed origin is answered", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://a.example", "access-control-request-method", "POST"},
			status:  200,
			want: map[string]string{
				"access-control-allow-origin": "https://a.example", "access-control-allow-methods": "GET, POST",
				"access-control-allow-headers": "x-a, x-b", "access-control-max-age": "600",
				"access-control-allow-credentials": "true", "access-control-expose-headers": "x-exp",
				"access-control-allow-private-network": "",
			},
			vary: "Origin",
		},
		{
			name: "suffix match folds case", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://X.B.EXAMPLE", "access-control-request-method", "GET"},
			status:  200, want: map[string]string{"access-control-allow-origin": "https://X.B.EXAMPLE"}, vary: "Origin",
		},
		{
			name: "regex match is anchored", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://12.c.example.evil", "access-control-request-method", "GET"},
			status:  200, upstream: true, want: map[string]string{"access-control-allow-origin": ""}, vary: "Accept-Encoding, Origin",
		},
		{
			name: "private network access granted when asked", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://a.example", "access-control-request-method", "GET", "access-control-request-private-network", "true"},
			status:  200, want: map[string]string{"access-control-allow-private-network": "true"}, vary: "Origin",
		},
		{
			name: "preflight from an unlisted origin is forwarded", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://evil.example", "access-control-request-method", "POST"},
			status:  200, upstream: true,
			want: map[string]string{"access-control-allow-origin": "", "access-control-allow-methods": ""},
			vary: "Accept-Encoding, Origin",
		},
		{
			name: "preflight from an unlisted origin answered without allow-origin", method: "OPTIONS", path: "/strict",
			headers: []string{"origin", "https://evil.example", "access-control-request-method", "PUT", "access-control-request-headers", "x-q"},
			status:  200,
			want:    map[string]string{"access-control-allow-origin": "", "access-control-allow-methods": "PUT", "access-control-allow-headers": "x-q"},
			vary:    "Origin",
		},
		{
			name: "origin null is not listed", method: "OPTIONS", path: "/strict",
			headers: []string{"origin", "null", "access-control-request-method", "GET"},
			status:  200, want: map[string]string{"access-control-allow-origin": ""}, vary: "Origin",
		},
		{
			name: "OPTIONS without request method is forwarded", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://a.example"},
			status:  200, upstream: true, want: map[string]string{"access-control-allow-origin": "https://a.example"},
			vary: "Accept-Encoding, Origin",
		},
		{
			name: "simple request from a listed origin", method: "GET", path: "/open",
			headers: []string{"origin", "https://a.example"},
			status:  200, upstream: true,
			want: map[string]string{
				"access-control-allow-origin": "https://a.example", "access-control-allow-credentials": "true",
				"access-control-expose-headers": "x-exp", "access-control-allow-methods": "",
			},
			vary: "Accept-Encoding, Origin",
		},
		{
			name: "simple request from an unlisted origin", method: "GET", path: "/open",
			headers: []string{"origin", "https://evil.example"},
			status:  200, upstream: true, want: map[string]string{"access-control-allow-origin": ""}, vary: "Accept-Encoding, Origin",
		},
		{
			name: "request without origin", method: "GET", path: "/open",
			status: 200, upstream: true, want: map[string]string{"access-control-allow-origin": ""}, vary: "Accept-Encoding, Origin",
		},
		{
			name: "virtual host policy applies to routes without one", method: "OPTIONS", path: "/",
			headers: []string{"origin", "https://vh.example", "access-control-request-method", "GET"},
			status:  200, want: map[string]string{"access-control-allow-origin": "https://vh.example", "access-control-allow-methods": ""},
			vary: "Origin",
		},
		{
			name: "route policy replaces the virtual host's", method: "OPTIONS", path: "/open",
			headers: []string{"origin", "https://vh.example", "access-control-request-method", "GET"},
			status:  200, upstream: true, want: map[string]string{"access-control-allow-origin": ""}, vary: "Accept-Encoding, Origin",
		},
		{
			name: "shadow mode does not enforce", method: "OPTIONS", path: "/shadow",
			headers: []string{"origin", "https://a.example", "access-control-request-method", "GET"},
			status:  200, upstream: true, want: map[string]string{"access-control-allow-origin": ""}, vary: "Accept-Encoding",
		},
		{
			name: "a matcher of * allows every origin", method: "OPTIONS", path: "/any",
			headers: []string{"origin", "https://whoever.example", "access-control-request-method", "GET"},
			status:  200, want: map[string]string{"access-control-allow-origin": "https://whoever.example", "access-control-allow-methods": "GET"},
			vary: "Origin",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("x-upstream") != ""; got != tc.upstream {
				t.Errorf("answered by upstream: %v, want %v", got, tc.upstream)
			}
			for k, v := range tc.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if got := joinValues(resp.Header.Values("vary")); got != tc.vary {
				t.Errorf("vary: %q, want %q", got, tc.vary)
			}
		})
	}
	if v, inv := p.Counter("http.web.cors.origin_valid"), p.Counter("http.web.cors.origin_invalid"); v != 8 || inv != 6 {
		t.Errorf("origin_valid %d, origin_invalid %d; want 8, 6", v, inv)
	}
}

func joinValues(vs []string) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += v
	}
	return out
}
