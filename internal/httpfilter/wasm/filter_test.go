package wasm_test

import (
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// echo is the upstream: it answers with the request body and reports in response headers
// what the plugins changed in the request.
func echo(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("x-echo-test", r.Header.Get("test"))
		w.Header().Set("x-echo-tenant-seen", r.Header.Get("x-tenant-seen"))
		w.Write(b)
	}))
	t.Cleanup(up.Close)
	return port(up.Listener.Addr())
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// authBodies returns two bodies whose FNV-1a hashes are even and odd: http_auth_random grants
// a request when its call's response body hashes even.
func authBodies() (grant, deny string) {
	for i := 0; grant == "" || deny == ""; i++ {
		s := fmt.Sprintf("answer-%d", i)
		h := fnv.New32a()
		h.Write([]byte(s))
		if h.Sum32()%2 == 0 {
			grant = s
		} else {
			deny = s
		}
	}
	return grant, deny
}

// authServer is the cluster http_auth_random calls ("httpbin"): the plugin forwards the
// request's headers, so the request's query decides the answer.
func authServer(t *testing.T) string {
	t.Helper()
	grant, deny := authBodies()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "allow" {
			io.WriteString(w, grant)
			return
		}
		io.WriteString(w, deny)
	}))
	t.Cleanup(srv.Close)
	return port(srv.Listener.Addr())
}

// wasmConfig is an envoy.filters.http.wasm typed_config in YAML flow style.
func wasmConfig(name, file, configuration, extra string) string {
	cfg := ""
	if configuration != "" {
		cfg = fmt.Sprintf(`, configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: %q}`, configuration)
	}
	return fmt.Sprintf(`{"@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm, config: {name: %s, vm_config: {vm_id: %s, runtime: envoy.wasm.runtime.v8, code: {local: {filename: %q}}}%s%s}}`,
		name, name, file, cfg, extra)
}

// override is a route's typed_per_filter_config entry running another plugin.
func override(name, file, configuration, extra string) string {
	return fmt.Sprintf(`{plugin: {"@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, config: %s}}`,
		wasmConfig(name, file, configuration, extra))
}

type routeSpec struct{ path, perFilter string }

func listenerYAML(name string, disabled bool, chainPlugin string, routes []routeSpec) string {
	var rs strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&rs, "\n              - match: {prefix: %s}\n                route: {cluster: upstream}", r.path)
		if r.perFilter != "" {
			fmt.Fprintf(&rs, "\n                typed_per_filter_config: %s", r.perFilter)
		}
	}
	return fmt.Sprintf(`
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:%s
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: plugin
            disabled: %t
            typed_config: %s
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`,
		name, name, rs.String(), disabled, chainPlugin)
}

func clustersYAML(upstream, auth string) string {
	return fmt.Sprintf(`
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
  - name: httpbin
    type: STATIC
    load_assignment:
      cluster_name: httpbin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, upstream, auth)
}

// TestPlugins runs the test plugins through a real listener, connection manager and router
// to a real upstream, each on its own route: the chain's plugin rewrites headers, routes
// override it with other plugins or disable it, and a second listener enables it per route.
func TestPlugins(t *testing.T) {
	dir := t.TempDir()
	rewrite := pluginFile(t, dir, "header_rewrite")
	body := pluginFile(t, dir, "http_body")
	auth := pluginFile(t, dir, "http_auth_random")
	shared := pluginFile(t, dir, "shared_data")
	props := pluginFile(t, dir, "host_calls")
	bad := pluginFile(t, dir, "bad")
	chain := wasmConfig("rewrite", rewrite, "", "")
	yaml := "static_resources:\n  listeners:" +
		listenerYAML("main", false, chain, []routeSpec{
			{path: "/off", perFilter: `{plugin: {"@type": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}}`},
			{path: "/body", perFilter: override("body", body, "", "")},
			{path: "/auth", perFilter: override("auth", auth, "", "")},
			{path: "/shared", perFilter: override("shared_filter_test", shared, "", "")},
			{path: "/props", perFilter: override("props", props, "", "")},
			{path: "/trap-open", perFilter: override("trap_open", bad, "trap", ", failure_policy: FAIL_OPEN")},
			{path: "/trap", perFilter: override("trap", bad, "trap", "")},
		}) +
		listenerYAML("optin", true, chain, []routeSpec{
			{path: "/on", perFilter: `{plugin: {"@type": type.googleapis.com/envoy.config.route.v3.FilterConfig}}`},
		}) +
		clustersYAML(echo(t), authServer(t))
	r := run(t, dir, yaml)
	main, optin := "http://"+r.addr("main"), "http://"+r.addr("optin")

	for _, tc := range []struct {
		name       string
		method     string
		url        string
		body       string
		hdr        []string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name: "chain plugin rewrites request and response headers", method: "GET", url: main + "/headers",
			hdr: []string{"test", "orig", "x-tenant", "a"}, wantStatus: 200,
			wantHeader: map[string]string{"x-echo-test": "best", "x-echo-tenant-seen": "yes", "x-rewritten": "1"},
		},
		{
			name: "route disables the plugin", method: "GET", url: main + "/off",
			hdr: []string{"test", "orig"}, wantStatus: 200,
			wantHeader: map[string]string{"x-echo-test": "orig", "x-rewritten": ""},
		},
		{
			name: "disabled chain plugin does not run", method: "GET", url: optin + "/",
			hdr: []string{"test", "orig"}, wantStatus: 200,
			wantHeader: map[string]string{"x-echo-test": "orig", "x-rewritten": ""},
		},
		{
			name: "route enables a disabled plugin", method: "GET", url: optin + "/on",
			hdr: []string{"test", "orig"}, wantStatus: 200,
			wantHeader: map[string]string{"x-echo-test": "best", "x-rewritten": "1"},
		},
		{
			name: "request body appended", method: "POST", url: main + "/body", body: "hello",
			hdr: []string{"buffer-operation", "append"}, wantStatus: 200, wantBody: "hello[this is appended body]",
		},
		{
			name: "request body prepended", method: "POST", url: main + "/body", body: "hello",
			hdr: []string{"buffer-operation", "prepend"}, wantStatus: 200, wantBody: "[this is prepended body]hello",
		},
		{
			name: "response body replaced", method: "POST", url: main + "/body", body: "hello",
			hdr: []string{"buffer-replace-at", "response"}, wantStatus: 200, wantBody: "[this is replaced body]",
		},
		{
			name: "local reply without a body", method: "GET", url: main + "/body",
			wantStatus: 400, wantBody: "content must be provided",
		},
		{
			name: "http_call grants", method: "GET", url: main + "/auth?allow", wantStatus: 200,
		},
		{
			name: "http_call denies with the plugin's reply", method: "GET", url: main + "/auth?deny",
			wantStatus: 403, wantBody: "access forbidden", wantHeader: map[string]string{"powered-by": "proxy-wasm-go-sdk!!"},
		},
		{
			name: "plugin traps: 503, fail closed", method: "GET", url: main + "/trap", wantStatus: 503, wantBody: "",
		},
		{
			name: "plugin traps: fail open passes", method: "GET", url: main + "/trap-open", wantStatus: 200,
			hdr: []string{"test", "orig"}, wantHeader: map[string]string{"x-echo-test": "orig"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, tc.method, tc.url, tc.body, tc.hdr...)
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.status, resp.body, tc.wantStatus)
			}
			if tc.wantBody != "" && resp.body != tc.wantBody {
				t.Errorf("body %q, want %q", resp.body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := resp.header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
		})
	}

	t.Run("shared data counts across requests", func(t *testing.T) {
		for range 3 {
			if resp := do(t, "GET", main+"/shared", ""); resp.status != 200 {
				t.Fatalf("status %d", resp.status)
			}
		}
		waitLog(t, "shared_filter_test: shared value: 3")
	})

	t.Run("properties and metrics", func(t *testing.T) {
		if resp := do(t, "GET", main+"/props?x=1", ""); resp.status != 200 {
			t.Fatalf("status %d", resp.status)
		}
		for _, want := range []string{
			"props: plugin_name=props", "props: request.path=/props?x=1", "props: source.address=127.0.0.1:",
			"props: my.state=kept",
		} {
			waitLog(t, want)
		}
		var got int64 = -1
		for _, st := range stats.Default.All() {
			if st.Name == "wasmcustom.host_calls_requests" {
				got = st.Value
			}
		}
		if got < 1 {
			t.Errorf("wasmcustom.host_calls_requests = %d, want at least 1", got)
		}
	})
}
