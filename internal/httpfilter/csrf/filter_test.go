package csrf_test

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

func TestCSRFThroughDataPlane(t *testing.T) {
	leak.Check(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	p := dataplane.Start(t, fmt.Sprintf(`
static_resources:
  listeners:
  - name: csrf
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: csrf_test
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /shadow}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.csrf:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy
                    filter_enabled: {default_value: {numerator: 0}}
                    shadow_enabled: {default_value: {numerator: 100}}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.csrf
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy
              filter_enabled: {default_value: {numerator: 100}}
              additional_origins: [{suffix: ".trusted.example"}]
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, port))
	addr := p.Addr(t, "csrf")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: wait.Timeout}
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
	}{
		{name: "GET is not checked", method: "GET", path: "/", headers: []string{"origin", "https://evil.example"}, status: 200},
		{name: "same origin", method: "POST", path: "/", headers: []string{"origin", "http://" + addr}, status: 200},
		{name: "same origin from the referer", method: "DELETE", path: "/", headers: []string{"referer", "http://" + addr + "/page?x"}, status: 200},
		{name: "additional origin", method: "PUT", path: "/", headers: []string{"origin", "https://app.trusted.example"}, status: 200},
		{name: "cross origin", method: "POST", path: "/", headers: []string{"origin", "https://evil.example"}, status: 403},
		{name: "origin wins over the referer", method: "POST", path: "/", headers: []string{"origin", "https://evil.example", "referer", "http://" + addr + "/"}, status: 403},
		{name: "no source origin", method: "PATCH", path: "/", status: 403},
		{name: "origin null", method: "POST", path: "/", headers: []string{"origin", "null"}, status: 403},
		{name: "userinfo does not make an origin", method: "POST", path: "/", headers: []string{"origin", "https://" + addr + "@evil.example"}, status: 403},
		{name: "shadow mode counts but passes", method: "POST", path: "/shadow", headers: []string{"origin", "https://evil.example"}, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "upstream"
			if tc.status == 403 {
				want = "Invalid origin"
			}
			if resp.StatusCode != tc.status || string(b) != want {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, want)
			}
		})
	}
	for name, want := range map[string]uint64{
		"http.csrf_test.csrf.request_valid":         3,
		"http.csrf_test.csrf.request_invalid":       6,
		"http.csrf_test.csrf.missing_source_origin": 1,
	} {
		if got := p.Counter(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}
