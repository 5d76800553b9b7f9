package jwtauthn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// benchBootstrap is one listener forwarding everything to upstream, with or without a
// jwt_authn filter requiring an ES256 token from a local JWKS.
func benchBootstrap(withFilter bool, jwks, upstream string) string {
	filter := ""
	if withFilter {
		filter = fmt.Sprintf(`
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                p:
                  issuer: %s
                  audiences: [api]
                  local_jwks: {inline_string: '%s'}
              rules:
              - match: {prefix: /}
                requires: {provider_name: p}`, testIssuer, jwks)
	}
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: jwt
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:%s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, filter, upstream)
}

// BenchmarkProxy measures one keep-alive HTTP/1.1 GET through the whole data plane to a
// fixed-answer upstream, without the filter and with it verifying a cached ES256 token: the
// difference is what the filter adds to a request.
func BenchmarkProxy(b *testing.B) {
	es := newSigner(b, jose.ES256, "es")
	tok := es.sign(b, defaults(claims{"exp": 4102444800}))
	up := loopback.Fixed(b, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	for _, bc := range []struct {
		name   string
		filter bool
	}{
		{name: "without_filter", filter: false},
		{name: "cached_ES256", filter: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			addr := gateway(b, benchBootstrap(bc.filter, jwksOf(b, es), portOf(b, up)))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nAuthorization: Bearer " + tok + "\r\n\r\n")
			br := bufio.NewReaderSize(c, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if status, err := readStatus(br); err != nil || status != 200 {
					b.Fatalf("status %d, %v", status, err)
				}
			}
		})
	}
}

// readStatus reads one response with a Content-Length body and returns its status.
func readStatus(br *bufio.Reader) (int, error) {
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if first {
			status, _ = strconv.Atoi(string(line[9:12]))
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("content-length:")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
	if length < 0 {
		return 0, io.ErrUnexpectedEOF
	}
	_, err := br.Discard(length)
	return status, err
}

// cachedRequest returns a function that runs the filter on a request carrying an ES256
// token the filter has already verified once.
func cachedRequest(tb testing.TB) func() {
	es := newSigner(tb, jose.ES256, "es")
	c, err := compile(tb, `
providers:
  p:
    issuer: `+testIssuer+`
    audiences: [api]
    local_jwks: {inline_string: '`+jwksOf(tb, es)+`'}
rules:
- match: {prefix: /}
  requires: {provider_name: p}
`)
	if err != nil {
		tb.Fatal(err)
	}
	auth := "Bearer " + es.sign(tb, defaults(claims{"exp": 4102444800}))
	s := &httpfilter.Stream{}
	f := c.NewFilter(s, nil)
	h := &s.Request
	run := func() {
		h.Reset()
		h.Method, h.Path, h.Authority = "GET", "/bench", "bench.example"
		h.Set("authorization", auth)
		if f.OnRequestHeaders(s, h, true) != httpfilter.Continue || h.Has("authorization") {
			tb.Fatal("token refused or forwarded")
		}
	}
	run() // verifies and caches the token
	return run
}

// BenchmarkFilterCachedES256 measures the filter alone on a request carrying an ES256 token
// it has verified before: extraction, the cache lookup, time and audience checks, and
// removing the token before forwarding.
func BenchmarkFilterCachedES256(b *testing.B) {
	run := cachedRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// TestCachedTokenAllocs pins the cached path at zero allocations.
func TestCachedTokenAllocs(t *testing.T) {
	run := cachedRequest(t)
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per request with a cached token, want 0", n)
	}
}
