package apikeyauth_test

import (
	"encoding/json"
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

// seen is what the upstream received.
type seen struct {
	URI    string
	Client string
	Key    string
	Cookie string
}

func TestAPIKeyAuthThroughDataPlane(t *testing.T) {
	leak.Check(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(seen{URI: r.RequestURI, Client: r.Header.Get("x-client"), Key: r.Header.Get("x-api-key"), Cookie: r.Header.Get("cookie")})
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	p := dataplane.Start(t, fmt.Sprintf(`
static_resources:
  listeners:
  - name: keys
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: apikey_test
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /admin}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.api_key_auth:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute
                    allowed_clients: [ops]
              - match: {prefix: /hidden}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.api_key_auth:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute
                    forwarding: {header: x-client, hide_credentials: true}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.api_key_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth
              credentials: [{key: key-dev, client: dev}, {key: key-ops, client: ops}]
              key_sources: [{header: X-API-Key}, {query: api_key}, {cookie: apikey}]
              forwarding: {header: x-client}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, port))
	addr := p.Addr(t, "keys")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: wait.Timeout}
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		status  int
		body    string // of a denial
		want    seen   // what the upstream saw
	}{
		{name: "key in a header", path: "/x", headers: []string{"x-api-key", "key-dev"}, status: 200, want: seen{URI: "/x", Client: "dev", Key: "key-dev"}},
		{name: "bearer key", path: "/x", headers: []string{"x-api-key", "Bearer key-dev"}, status: 200, want: seen{URI: "/x", Client: "dev", Key: "Bearer key-dev"}},
		{name: "key in the query", path: "/x?a=1&api_key=key%2Dops", status: 200, want: seen{URI: "/x?a=1&api_key=key%2Dops", Client: "ops"}},
		{name: "key in a cookie", path: "/x", headers: []string{"cookie", "a=b; apikey=\"key-dev\""}, status: 200, want: seen{URI: "/x", Client: "dev", Cookie: "a=b; apikey=\"key-dev\""}},
		{name: "forged client header is replaced", path: "/x", headers: []string{"x-api-key", "key-dev", "x-client", "ops"}, status: 200, want: seen{URI: "/x", Client: "dev", Key: "key-dev"}},
		{name: "no key", path: "/x", status: 401, body: "Client authentication failed."},
		{name: "unknown key", path: "/x", headers: []string{"x-api-key", "key-devX"}, status: 401, body: "Client authentication failed."},
		{name: "empty query key falls through", path: "/x?api_key=", status: 401, body: "Client authentication failed."},
		{name: "allowed client", path: "/admin", headers: []string{"x-api-key", "key-ops"}, status: 200, want: seen{URI: "/admin", Client: "ops", Key: "key-ops"}},
		{name: "client not allowed on the route", path: "/admin", headers: []string{"x-api-key", "key-dev"}, status: 403, body: "Client is forbidden."},
		{name: "hidden header key", path: "/hidden", headers: []string{"x-api-key", "key-dev"}, status: 200, want: seen{URI: "/hidden", Client: "dev"}},
		{name: "hidden query key", path: "/hidden?a=1&api_key=key-dev&b=2", status: 200, want: seen{URI: "/hidden?a=1&b=2", Client: "dev"}},
		{name: "hidden cookie key", path: "/hidden", headers: []string{"cookie", "a=b; apikey=key-dev; c=d"}, status: 200, want: seen{URI: "/hidden", Client: "dev", Cookie: "a=b; c=d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.status != 200 {
				if string(b) != tc.body {
					t.Errorf("body %q, want %q", b, tc.body)
				}
				return
			}
			var got seen
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("upstream saw %+v, want %+v", got, tc.want)
			}
		})
	}
	for name, want := range map[string]uint64{
		"http.apikey_test.api_key_auth.allowed":      9,
		"http.apikey_test.api_key_auth.unauthorized": 3,
		"http.apikey_test.api_key_auth.forbidden":    1,
	} {
		if got := p.Counter(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}
