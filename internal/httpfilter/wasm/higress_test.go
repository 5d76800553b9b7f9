package wasm_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestHigressExtensions runs a plugin declaring Higress's ABI 0.2.100 through a real listener
// whose buffer limit is 1 KiB: header statuses 2–4, a local reply followed by Continue, a
// request header change that selects another route (unless clear_route_cache is off), and
// per-stream buffer limits that let a larger body be buffered.
func TestHigressExtensions(t *testing.T) {
	const reset = -1
	dir := t.TempDir()
	plugin := pluginFile(t, dir, "higress")
	yaml := fmt.Sprintf(`static_resources:
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    per_connection_buffer_limit_bytes: 1024
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: main
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /, headers: [{name: x-route, string_match: {exact: b}}]}
                direct_response: {status: 200, body: {inline_string: route b}}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: plugin
            typed_config: %s
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`, wasmConfig("higress", plugin, "", "")) + clustersYAML(echo(t), "1")
	r := run(t, dir, yaml)
	url := "http://" + r.addr("main") + "/"
	big := strings.Repeat("b", 4096)
	for _, tc := range []struct {
		name       string
		method     string
		body       string
		hdr        []string
		wantStatus int
		wantBody   string
	}{
		{name: "continue and end stream", method: "GET", hdr: []string{"x-action", "2"}, wantStatus: 200},
		{name: "stop all and buffer, resumed", method: "POST", body: "small", hdr: []string{"x-action", "3", "x-resume", "1"},
			wantStatus: 200, wantBody: "small"},
		{name: "stop all and watermark holds the headers for the body", method: "POST", body: "small", hdr: []string{"x-action", "4"},
			wantStatus: 200, wantBody: "small"},
		{name: "local reply then continue", method: "GET", hdr: []string{"x-action", "0", "x-local", "1"},
			wantStatus: 418, wantBody: "local"},
		{name: "header change selects the route again", method: "GET", hdr: []string{"x-set-route", "b"},
			wantStatus: 200, wantBody: "route b"},
		{name: "clear_route_cache off keeps the route", method: "GET", hdr: []string{"x-set-route", "b", "x-keep-route", "1"},
			wantStatus: 200, wantBody: ""},
		{name: "buffered body over the listener's limit", method: "POST", body: big, hdr: []string{"x-action", "1"},
			wantStatus: 413},
		{name: "set_decoder_buffer_limit raises it", method: "POST", body: big, hdr: []string{"x-action", "1", "x-decoder-limit", "8192"},
			wantStatus: 200, wantBody: big},
		{name: "buffered response over the listener's limit", method: "POST", body: big,
			hdr: []string{"x-response-pause", "1", "x-decoder-limit", "8192"}, wantStatus: reset},
		{name: "set_encoder_buffer_limit raises the response's", method: "POST", body: big,
			hdr: []string{"x-response-pause", "1", "x-decoder-limit", "8192", "x-encoder-limit", "8192"}, wantStatus: 200, wantBody: big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantStatus == reset {
				// The response headers wait for the body, so the stream is reset.
				if _, err := try(tc.method, url, tc.body, tc.hdr...); err == nil {
					t.Fatal("got a response, want the stream reset")
				}
				return
			}
			resp := do(t, tc.method, url, tc.body, tc.hdr...)
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d (%.40q), want %d", resp.status, resp.body, tc.wantStatus)
			}
			if tc.wantStatus == 200 && resp.body != tc.wantBody {
				t.Errorf("body %.40q, want %.40q", resp.body, tc.wantBody)
			}
		})
	}
}
