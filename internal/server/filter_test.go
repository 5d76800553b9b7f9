package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/leak"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/fault"
)

// faultListener is a listener whose chain has the fault filter (abort with 503, always)
// disabled or enabled, and whose routes enable, override or disable it per route with
// Envoy's FilterConfig; every route forwards to the cluster "upstream".
func faultListener(name string, disabled bool) string {
	return fmt.Sprintf(`
  - name: %[1]s
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %[1]s
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: /enabled}
                typed_per_filter_config:
                  fault:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                route: {cluster: upstream}
              - match: {path: /override}
                typed_per_filter_config:
                  fault:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                      abort: {http_status: 418, percentage: {numerator: 100}}
                route: {cluster: upstream}
              - match: {path: /disabled}
                typed_per_filter_config:
                  fault:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
                route: {cluster: upstream}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: fault
            disabled: %[2]t
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              abort: {http_status: 503, percentage: {numerator: 100}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`, name, disabled)
}

// TestPerRouteFilterEnable runs the fault filter, disabled in one chain and enabled in
// another, through real listeners to a real upstream: a route's FilterConfig turns it on
// (with the chain's config or its own) or off, as in Envoy.
func TestPerRouteFilterEnable(t *testing.T) {
	leak.Check(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	yaml := "static_resources:\n  listeners:" + faultListener("disabled-fault", true) + faultListener("enabled-fault", false) + fmt.Sprintf(`
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, port)
	s := newTestServer(t, Options{})
	t.Cleanup(func() { s.shutdown() })
	if err := apply(t, s, yaml); err != nil {
		t.Fatal(err)
	}
	client := newClient(t, false)
	for _, tc := range []struct {
		name, listener, path string
		wantStatus           int
		wantBody             string
	}{
		{name: "disabled filter does not run", listener: "disabled-fault", path: "/", wantStatus: 200, wantBody: "upstream"},
		{name: "route enables it with the chain's config", listener: "disabled-fault", path: "/enabled", wantStatus: 503, wantBody: "fault filter abort"},
		{name: "route enables it with its own config", listener: "disabled-fault", path: "/override", wantStatus: 418, wantBody: "fault filter abort"},
		{name: "route disabling a disabled filter", listener: "disabled-fault", path: "/disabled", wantStatus: 200, wantBody: "upstream"},
		{name: "enabled filter runs", listener: "enabled-fault", path: "/", wantStatus: 503, wantBody: "fault filter abort"},
		{name: "route disables an enabled filter", listener: "enabled-fault", path: "/disabled", wantStatus: 200, wantBody: "upstream"},
		{name: "route overrides an enabled filter", listener: "enabled-fault", path: "/override", wantStatus: 418, wantBody: "fault filter abort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Get("http://" + addrOf(s, tc.listener) + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
