package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// routingConfig is an Envoy bootstrap exercising most route features. Data: a, b (echo
// upstream ports), h2 (an h2c upstream port), dead (a closed port).
const routingConfig = `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "web"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: web
          use_remote_address: true
          normalize_path: true
          merge_slashes: true
          upgrade_configs: [{upgrade_type: websocket}]
          route_config:
            name: local
            response_headers_to_add: [{header: {key: x-config, value: "c"}}]
            virtual_hosts:
            - name: api
              domains: ["api.example.com", "*.api.example.com"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: b}
            - name: default
              domains: ["*"]
              routes:
              - match: {path: "/direct"}
                direct_response: {status: 200, body: {inline_string: "hello"}}
              - match: {prefix: "/old/"}
                redirect: {prefix_rewrite: "/new/", response_code: PERMANENT_REDIRECT}
              - match: {prefix: "/secure"}
                redirect: {https_redirect: true}
              - match: {prefix: "/rewrite/"}
                route: {cluster: a, prefix_rewrite: "/"}
              - match: {safe_regex: {regex: "^/regex/[0-9]+$"}}
                route: {cluster: b}
              - match: {prefix: "/hdr", headers: [{name: x-pick, string_match: {exact: b}}]}
                route: {cluster: b}
              - match: {prefix: "/q", query_parameters: [{name: v, string_match: {exact: "2"}}]}
                route: {cluster: b}
              - match: {prefix: "/weighted"}
                route: {weighted_clusters: {clusters: [{name: a, weight: 50}, {name: b, weight: 50}]}}
              - match: {prefix: "/delay/"}
                route: {cluster: a, timeout: 0.3s}
              - match: {prefix: "/dead"}
                route: {cluster: dead}
              - match: {prefix: "/byheader"}
                route: {cluster_header: x-cluster}
              - match: {prefix: "/h2/"}
                route: {cluster: h2, prefix_rewrite: "/"}
              - match: {prefix: "/hdrs"}
                route: {cluster: a}
                request_headers_to_add: [{header: {key: x-added, value: "yes"}}]
                response_headers_to_add: [{header: {key: x-resp, value: "r"}}]
                request_headers_to_remove: [x-drop]
              - match: {prefix: "/"}
                route: {cluster: a}
{{template "router"}}
  clusters:
  - name: a
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: a
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.a}}}}}}]}]
  - name: b
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: b
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.b}}}}}}]}]
  - name: h2
    connect_timeout: 1s
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: h2
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.h2}}}}}}]}]
  - name: dead
    connect_timeout: 0.5s
    type: STATIC
    load_assignment:
      cluster_name: dead
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.dead}}}}}}]}]
`

func startRouting(t *testing.T) *proxy {
	a, b, h2 := startEcho(t, "a"), startEcho(t, "b"), startH2CEcho(t, "h2")
	_, pa := hostPort(a)
	_, pb := hostPort(b)
	_, ph2 := hostPort(h2)
	return startProxy(t, routingConfig, map[string]any{"a": pa, "b": pb, "h2": ph2, "dead": freePort(t)})
}

func TestRouting(t *testing.T) {
	p := startRouting(t)
	c := noRedirect()
	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		// wantUpstream is the echo server that must answer ("" for a local answer).
		wantUpstream string
		wantPath     string
		wantBody     string
		wantHeader   map[string]string
	}{
		{name: "default route", path: "/anything?x=1", wantStatus: 200, wantUpstream: "a", wantPath: "/anything?x=1"},
		{name: "virtual host exact", path: "/x", header: map[string]string{"Host": "api.example.com"}, wantStatus: 200, wantUpstream: "b"},
		{name: "virtual host wildcard", path: "/x", header: map[string]string{"Host": "v1.api.example.com:8080"}, wantStatus: 200, wantUpstream: "b"},
		{name: "direct response", path: "/direct", wantStatus: 200, wantBody: "hello", wantHeader: map[string]string{"X-Config": "c"}},
		{name: "prefix redirect", path: "/old/page?q=1", wantStatus: 308, wantHeader: map[string]string{"Location": "http://127.0.0.1:PORT/new/page?q=1"}},
		{name: "https redirect", path: "/secure/x", wantStatus: 301, wantHeader: map[string]string{"Location": "https://127.0.0.1:PORT/secure/x"}},
		{name: "prefix rewrite", path: "/rewrite/a/b?z=9", wantStatus: 200, wantUpstream: "a", wantPath: "/a/b?z=9"},
		{name: "regex match", path: "/regex/42", wantStatus: 200, wantUpstream: "b"},
		{name: "regex no match falls through", path: "/regex/4x", wantStatus: 200, wantUpstream: "a"},
		{name: "header match", path: "/hdr", header: map[string]string{"X-Pick": "b"}, wantStatus: 200, wantUpstream: "b"},
		{name: "header mismatch", path: "/hdr", header: map[string]string{"X-Pick": "c"}, wantStatus: 200, wantUpstream: "a"},
		{name: "query match", path: "/q?v=2", wantStatus: 200, wantUpstream: "b"},
		{name: "query mismatch", path: "/q?v=3", wantStatus: 200, wantUpstream: "a"},
		{name: "path normalised", path: "/rewrite/x/../y//z", wantStatus: 200, wantUpstream: "a", wantPath: "/y/z"},
		{name: "upstream status passes", path: "/status/418", wantStatus: 418},
		{name: "route timeout", path: "/delay/2000", wantStatus: 504, wantBody: "upstream request timeout"},
		{name: "connect failure", path: "/dead", wantStatus: 503},
		{name: "cluster header", path: "/byheader", header: map[string]string{"X-Cluster": "b"}, wantStatus: 200, wantUpstream: "b"},
		{name: "cluster header unknown", path: "/byheader", header: map[string]string{"X-Cluster": "nope"}, wantStatus: 503},
		{name: "h2 upstream", path: "/h2/hello", wantStatus: 200, wantUpstream: "h2", wantPath: "/hello"},
		{name: "header mutations", path: "/hdrs", header: map[string]string{"X-Drop": "1"}, wantStatus: 200, wantUpstream: "a", wantHeader: map[string]string{"X-Resp": "r", "X-Config": "c"}},
		{name: "head request", method: "HEAD", path: "/anything", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			resp, body := do(t, c, method, p.url("web", tc.path), nil, tc.header)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantBody != "" && strings.TrimSpace(body) != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				v = strings.ReplaceAll(v, "PORT", strconv.Itoa(p.ports["web"]))
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := resp.Header.Get("Server"); got != "nuncio" {
				t.Errorf("Server = %q, want nuncio", got)
			}
			if tc.wantUpstream == "" {
				return
			}
			e := decodeEcho(t, body)
			if e.Server != tc.wantUpstream {
				t.Errorf("answered by %q, want %q", e.Server, tc.wantUpstream)
			}
			if tc.wantPath != "" && e.Path != tc.wantPath {
				t.Errorf("upstream saw path %q, want %q", e.Path, tc.wantPath)
			}
			if tc.name == "header mutations" {
				if got := http.Header(e.Header).Get("X-Added"); got != "yes" {
					t.Errorf("x-added = %q", got)
				}
				if http.Header(e.Header).Get("X-Drop") != "" {
					t.Errorf("x-drop was not removed")
				}
			}
		})
	}
}

func TestRequestHeaders(t *testing.T) {
	p := startRouting(t)
	c := &http.Client{Timeout: 10 * time.Second}
	resp, body := do(t, c, "GET", p.url("web", "/h"), nil, map[string]string{
		"X-Forwarded-For":  "203.0.113.9",
		"Connection":       "X-Hop",
		"X-Hop":            "secret",
		"Proxy-Connection": "keep-alive",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	e := decodeEcho(t, body)
	h := http.Header(e.Header)
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.9,127.0.0.1" {
		t.Errorf("x-forwarded-for = %q, want the peer appended", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("x-forwarded-proto = %q", got)
	}
	if id := h.Get("X-Request-Id"); len(id) != 36 {
		t.Errorf("x-request-id = %q, want a UUID", id)
	}
	for _, hop := range []string{"X-Hop", "Proxy-Connection"} {
		if h.Get(hop) != "" {
			t.Errorf("hop-by-hop header %s reached the upstream", hop)
		}
	}

	// Hop-by-hop response headers named by the upstream's Connection header are removed too.
	resp, _ = do(t, c, "GET", p.url("web", "/hop"), nil, nil)
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers leaked: %v", resp.Header)
	}
	if got := resp.Header.Get("Server"); got != "nuncio" {
		t.Errorf("upstream Server header not overwritten: %q", got)
	}
}

func TestBodies(t *testing.T) {
	p := startRouting(t)
	c := &http.Client{Timeout: 10 * time.Second}
	big := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB

	t.Run("content-length body", func(t *testing.T) {
		resp, body := do(t, c, "POST", p.url("web", "/post"), strings.NewReader(big), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e := decodeEcho(t, body); e.Body != big {
			t.Errorf("upstream got %d bytes, want %d", len(e.Body), len(big))
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		// io.MultiReader hides the length, so the client sends chunked.
		resp, body := do(t, c, "POST", p.url("web", "/post"), io.MultiReader(strings.NewReader(big)), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e := decodeEcho(t, body); e.Body != big {
			t.Errorf("upstream got %d bytes, want %d", len(e.Body), len(big))
		}
	})
	t.Run("streamed response", func(t *testing.T) {
		resp, body := do(t, c, "GET", p.url("web", "/stream/50"), nil, nil)
		if resp.StatusCode != 200 || strings.Count(body, "chunk") != 50 {
			t.Fatalf("status %d, %d chunks", resp.StatusCode, strings.Count(body, "chunk"))
		}
	})
	t.Run("response trailers", func(t *testing.T) {
		req, _ := http.NewRequest("GET", p.url("web", "/trailers"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
			t.Errorf("trailer X-Checksum = %q, want abc", got)
		}
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.addr("web"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("want 100 Continue first, got %q (%v)", line, err)
		}
		br.ReadString('\n') // blank line after the interim response
		io.WriteString(conn, "hello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if e := decodeEcho(t, string(b)); e.Body != "hello" || http.Header(e.Header).Get("Expect") != "" {
			t.Errorf("upstream saw body %q expect %q", e.Body, http.Header(e.Header).Get("Expect"))
		}
	})
	t.Run("keep-alive reuse", func(t *testing.T) {
		conn, err := net.Dial("tcp", p.addr("web"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		// Pipelined: both requests written before reading.
		io.WriteString(conn, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, want := range []string{"/one", "/two"} {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if e := decodeEcho(t, string(b)); e.Path != want {
				t.Errorf("got %q, want %q", e.Path, want)
			}
		}
	})
}

func TestHTTP2Downstream(t *testing.T) {
	p := startRouting(t)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}}
	for _, path := range []string{"/x", "/h2/y"} {
		resp, body := do(t, h2c, "POST", p.url("web", path), strings.NewReader("payload"), nil)
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("%s: status %d proto %s", path, resp.StatusCode, resp.Proto)
		}
		if e := decodeEcho(t, body); e.Body != "payload" {
			t.Errorf("%s: upstream body %q", path, e.Body)
		}
	}
	resp, body := do(t, h2c, "GET", p.url("web", "/direct"), nil, nil)
	if resp.StatusCode != 200 || body != "hello" {
		t.Errorf("direct over h2c: %d %q", resp.StatusCode, body)
	}
}
