package jwtauthn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/server"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// jwksMode is how the test JWKS server answers.
type jwksMode int32

const (
	jwksOK      jwksMode = iota
	jwksGarbage          // 200 with a body that is not a JWKS
	jwksSlow             // no answer until the client gives up
	jwksError            // 503
	jwksDown             // the connection is closed without an answer
)

// jwksServer is a real JWKS endpoint on loopback whose keys the test rotates and which the
// test can make fail in each way a real one does.
type jwksServer struct {
	body atomic.Pointer[string]
	mode atomic.Int32
	hits atomic.Int64
	addr string
}

func newJWKSServer(t *testing.T, jwks string) *jwksServer {
	js := &jwksServer{}
	js.set(jwks)
	js.addr = loopback.HTTP(t, js)
	return js
}

func (js *jwksServer) set(jwks string) { js.body.Store(&jwks) }

func (js *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	js.hits.Add(1)
	switch jwksMode(js.mode.Load()) {
	case jwksGarbage:
		io.WriteString(w, "<html>maintenance</html>")
	case jwksSlow:
		<-r.Context().Done()
	case jwksError:
		w.WriteHeader(503)
	case jwksDown:
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	default:
		w.Header().Set("content-type", "application/json")
		io.WriteString(w, *js.body.Load())
	}
}

func portOf(t testing.TB, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// gateway runs the whole data plane (server.Run) on the Envoy bootstrap yaml until the test
// ends, and returns the address of its listener "jwt".
func gateway(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler), DrainTime: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if runErr != nil {
			t.Error(runErr)
		}
	})
	var addr string
	wait.For(t, "the listener", func() bool {
		select {
		case <-done:
			t.Fatalf("server stopped: %v", runErr)
		default:
		}
		for _, l := range s.ListenerStatus() {
			if l.Name == "jwt" {
				addr = l.Address.String()
			}
		}
		return addr != ""
	})
	return addr
}

// bootstrap is the gateway configuration of these tests: providers "remote" (ES256 keys
// from the JWKS server, through the cluster "jwks") and "local" (an HS256 secret inline,
// token in x-token), rules by path, a named requirement for /named and the filter
// disabled on /off. Every route forwards to an echo upstream.
func bootstrap(prefix, jwksAddr, upstreamAddr, localJWKS string) string {
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
          stat_prefix: %[1]s
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /named}
                typed_per_filter_config:
                  envoy.filters.http.jwt_authn:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig
                    requirement_name: local-only
                route: {cluster: upstream}
              - match: {prefix: /off}
                typed_per_filter_config:
                  envoy.filters.http.jwt_authn:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig
                    disabled: true
                route: {cluster: upstream}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              bypass_cors_preflight: true
              providers:
                remote:
                  issuer: %[4]s
                  audiences: [api]
                  remote_jwks:
                    http_uri: {uri: "http://jwks.test/.well-known/jwks.json", cluster: jwks, timeout: 0.5s}
                    cache_duration: 0.2s
                    async_fetch: {failed_refetch_duration: 0.1s}
                  forward_payload_header: x-jwt-payload
                  claim_to_headers:
                  - {header_name: x-jwt-sub, claim_name: sub}
                  - {header_name: x-jwt-tenant, claim_name: org.tenant}
                local:
                  issuer: https://local.test
                  local_jwks: {inline_string: '%[5]s'}
                  from_headers: [{name: x-token}]
                  forward: true
              rules:
              - match: {prefix: /public}
              - match: {prefix: /aud}
                requires: {provider_and_audiences: {provider_name: remote, audiences: [admin]}}
              - match: {prefix: /any}
                requires: {requires_any: {requirements: [{provider_name: remote}, {provider_name: local}]}}
              - match: {prefix: /all}
                requires: {requires_all: {requirements: [{provider_name: remote}, {provider_name: local}]}}
              - match: {prefix: /optional}
                requires: {allow_missing: {}}
              - match: {prefix: /lenient}
                requires: {allow_missing_or_failed: {}}
              - match: {prefix: /, headers: [{name: x-local, present_match: true}]}
                requires: {provider_name: local}
              - match: {prefix: /}
                requires: {provider_name: remote}
              requirement_map:
                local-only: {provider_name: local}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[3]s}}}}]}]
  - name: jwks
    type: STATIC
    connect_timeout: 0.5s
    load_assignment:
      cluster_name: jwks
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]s}}}}]}]
`, prefix, jwksAddr, upstreamAddr, testIssuer, localJWKS)
}

type reply struct {
	status int
	body   string
	header http.Header
	echo   loopback.Request // what the upstream received, for 200s
}

func send(t *testing.T, method, url string, hdr map[string]string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: wait.Timeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, body: string(b), header: resp.Header}
	if resp.StatusCode == 200 && resp.Header.Get("x-upstream") != "" {
		if r.echo, err = loopback.DecodeEcho(b); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func counter(name string) int64 {
	for _, s := range stats.Default.All() {
		if s.Name == name {
			return s.Value
		}
	}
	return -1
}

// TestDataPlane sends requests through a real listener, the filter and the router to a real
// upstream, with keys from a real JWKS server, and checks each answer and what reached the
// upstream.
func TestDataPlane(t *testing.T) {
	leak.Check(t)
	es := newSigner(t, jose.ES256, "es-1")
	hs := newSigner(t, jose.HS256, "hs-1")
	js := newJWKSServer(t, jwksOf(t, es))
	up := loopback.HTTP(t, &loopback.Echo{Name: "echo"})
	addr := gateway(t, bootstrap("dp", portOf(t, js.addr), portOf(t, up), jwksOf(t, hs)))
	base := "http://" + addr

	good := es.sign(t, defaults(claims{"org": map[string]any{"tenant": "acme"}}))
	local := hs.sign(t, defaults(claims{"iss": "https://local.test", "aud": nil}))
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	invalid := `Bearer realm="http://` + addr + `/api", error="invalid_token"`
	now := time.Now().Unix()
	tests := []struct {
		name      string
		method    string
		path      string
		header    map[string]string
		status    int
		body      string
		challenge string
		check     func(t *testing.T, r reply)
	}{
		{name: "no token", path: "/api", status: 401, body: "Jwt is missing", challenge: `Bearer realm="http://` + addr + `/api"`},
		{name: "valid token", path: "/api?x=1", header: bearer(good), status: 200, check: func(t *testing.T, r reply) {
			h := r.echo.Header
			if h.Get("authorization") != "" {
				t.Error("the token was forwarded although forward is false")
			}
			if h.Get("x-jwt-sub") != "alice" || h.Get("x-jwt-tenant") != "acme" {
				t.Errorf("claim headers: sub %q tenant %q", h.Get("x-jwt-sub"), h.Get("x-jwt-tenant"))
			}
			if p := h.Get("x-jwt-payload"); p != strings.Split(good, ".")[1] {
				t.Errorf("payload header %q", p)
			}
		}},
		{name: "token in access_token", path: "/api?access_token=" + good, status: 200},
		{name: "forged headers are replaced", path: "/api", header: map[string]string{
			"authorization": "Bearer " + good, "x-jwt-sub": "root", "x-jwt-payload": "forged", "x-jwt-tenant": "evil",
		}, status: 200, check: func(t *testing.T, r reply) {
			if h := r.echo.Header; h.Get("x-jwt-sub") != "alice" || h.Get("x-jwt-tenant") != "acme" || h.Get("x-jwt-payload") == "forged" {
				t.Errorf("forged headers reached the upstream: %v", h)
			}
		}},
		{name: "forged headers are stripped on a public path", path: "/public", header: map[string]string{"x-jwt-sub": "root", "x-jwt-payload": "forged"}, status: 200,
			check: func(t *testing.T, r reply) {
				if h := r.echo.Header; h.Get("x-jwt-sub") != "" || h.Get("x-jwt-payload") != "" {
					t.Errorf("forged headers reached the upstream: %v", h)
				}
			}},
		{name: "malformed", path: "/api", header: bearer("abc.def"), status: 401, body: statusMessages[stBadFormat], challenge: invalid},
		{name: "expired", path: "/api", header: bearer(es.sign(t, defaults(claims{"exp": now - 3600}))), status: 401, body: "Jwt is expired", challenge: invalid},
		{name: "not yet valid", path: "/api", header: bearer(es.sign(t, defaults(claims{"nbf": now + 3600}))), status: 401, body: "Jwt not yet valid"},
		{name: "wrong issuer", path: "/api", header: bearer(es.sign(t, defaults(claims{"iss": "https://evil.test"}))), status: 401, body: "Jwt issuer is not configured"},
		{name: "wrong audience", path: "/api", header: bearer(es.sign(t, defaults(claims{"aud": "other"}))), status: 403, body: "Audiences in Jwt are not allowed"},
		{name: "unknown kid", path: "/api", header: bearer(newSigner(t, jose.ES256, "es-9").sign(t, defaults(nil))), status: 401, body: "Jwks doesn't have key to match kid or alg from Jwt"},
		{name: "alg none", path: "/api", header: bearer(rawToken(`{"alg":"none"}`, defaults(nil), nil)), status: 401, body: "Jwt header [alg] is not supported"},
		{name: "oversized", path: "/api", header: bearer(es.sign(t, defaults(claims{"pad": strings.Repeat("x", 20000)}))), status: 401, body: statusMessages[stBadFormat]},
		{name: "audience-only requirement", path: "/aud", header: bearer(good), status: 403, body: "Audiences in Jwt are not allowed"},
		{name: "public path", path: "/public", status: 200},
		{name: "any: second provider", path: "/any", header: map[string]string{"x-token": local}, status: 200, check: func(t *testing.T, r reply) {
			if r.echo.Header.Get("x-token") != local {
				t.Error("local provider forwards its token")
			}
		}},
		{name: "any: none", path: "/any", status: 401, body: "Jwt is missing"},
		{name: "all: both", path: "/all", header: map[string]string{"authorization": "Bearer " + good, "x-token": local}, status: 200, check: func(t *testing.T, r reply) {
			if r.echo.Header.Get("x-jwt-sub") != "alice" || r.echo.Header.Get("authorization") != "" {
				t.Error("the remote provider's results are missing")
			}
		}},
		{name: "all: one missing", path: "/all", header: map[string]string{"x-token": local}, status: 401, body: "Jwt is missing"},
		{name: "allow_missing without a token", path: "/optional", status: 200},
		{name: "allow_missing with a bad token", path: "/optional", header: bearer(es.sign(t, defaults(claims{"exp": now - 3600}))), status: 401, body: "Jwt is expired"},
		{name: "allow_missing with a good token", path: "/optional", header: bearer(good), status: 200, check: func(t *testing.T, r reply) {
			if r.echo.Header.Get("x-jwt-sub") != "alice" {
				t.Error("claims not forwarded")
			}
		}},
		{name: "allow_missing_or_failed with a bad token", path: "/lenient", header: bearer("garbage"), status: 200},
		{name: "header rule picks the local provider", path: "/api", header: map[string]string{"x-local": "1", "x-token": local}, status: 200},
		{name: "requirement_name", path: "/named", header: map[string]string{"x-token": local}, status: 200},
		{name: "requirement_name refuses the other provider", path: "/named", header: bearer(good), status: 401, body: "Jwt is missing"},
		{name: "disabled on the route", path: "/off", status: 200},
		{name: "CORS preflight", method: "OPTIONS", path: "/api", header: map[string]string{"origin": "https://app.test", "access-control-request-method": "GET"}, status: 200},
		{name: "OPTIONS without CORS headers", method: "OPTIONS", path: "/api", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.method
			if m == "" {
				m = "GET"
			}
			r := send(t, m, base+tc.path, tc.header)
			if r.status != tc.status || (tc.body != "" && r.body != tc.body) {
				t.Fatalf("got %d %q, want %d %q", r.status, r.body, tc.status, tc.body)
			}
			if tc.challenge != "" && r.header.Get("www-authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", r.header.Get("www-authenticate"), tc.challenge)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	for name, min := range map[string]int64{"allowed": 10, "denied": 10, "cors_preflight_bypassed": 1, "jwks_fetch_success": 1, "jwt_cache_hit": 1} {
		if v := counter("http.dp.jwt_authn." + name); v < min {
			t.Errorf("http.dp.jwt_authn.%s = %d, want at least %d", name, v, min)
		}
	}
}

// TestRemoteJWKS rotates the keys of a real JWKS server and then breaks it in each way (garbage,
// slow, error status, connection closed): new keys are picked up, and while the endpoint
// fails the last good keys keep verifying tokens never seen before.
func TestRemoteJWKS(t *testing.T) {
	leak.Check(t)
	k1 := newSigner(t, jose.ES256, "k1")
	k2 := newSigner(t, jose.ES256, "k2")
	js := newJWKSServer(t, jwksOf(t, k1))
	up := loopback.HTTP(t, &loopback.Echo{Name: "echo"})
	base := "http://" + gateway(t, bootstrap("rot", portOf(t, js.addr), portOf(t, up), jwksOf(t, newSigner(t, jose.HS256, "h"))))
	get := func(tok string) reply {
		return send(t, "GET", base+"/api", map[string]string{"authorization": "Bearer " + tok})
	}
	if r := get(k1.sign(t, defaults(nil))); r.status != 200 {
		t.Fatalf("key 1: %d %q", r.status, r.body)
	}
	js.set(jwksOf(t, k2))
	wait.For(t, "the rotated key", func() bool { return get(k2.sign(t, defaults(nil))).status == 200 })

	for _, tc := range []struct {
		name string
		mode jwksMode
	}{
		{name: "garbage", mode: jwksGarbage},
		{name: "slow", mode: jwksSlow},
		{name: "error status", mode: jwksError},
		{name: "down", mode: jwksDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failed := counter("http.rot.jwt_authn.jwks_fetch_failed")
			js.mode.Store(int32(tc.mode))
			defer js.mode.Store(int32(jwksOK))
			wait.For(t, "a failed fetch", func() bool {
				get(k2.sign(t, defaults(nil))) // a request past cache_duration starts the refresh
				return counter("http.rot.jwt_authn.jwks_fetch_failed") > failed
			})
			for i := range 3 {
				if r := get(k2.sign(t, defaults(claims{"n": i}))); r.status != 200 {
					t.Fatalf("fresh token with the last good keys: %d %q", r.status, r.body)
				}
			}
		})
	}
}

// TestJWKSNeverGood: with no good keys ever fetched (nothing listening, an endpoint that
// never answers, one that answers garbage), a token is refused with Envoy's reason, after at
// most the fetch timeout, and never hangs.
func TestJWKSNeverGood(t *testing.T) {
	leak.Check(t)
	up := loopback.HTTP(t, &loopback.Echo{Name: "echo"})
	es := newSigner(t, jose.ES256, "es")
	for _, tc := range []struct {
		name string
		mode jwksMode
		down bool
	}{
		{name: "nothing listening", down: true},
		{name: "never answers", mode: jwksSlow},
		{name: "garbage", mode: jwksGarbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var port string
			if tc.down {
				ln := loopback.Listen(t)
				port = portOf(t, ln.Addr().String())
				ln.Close() // nothing listens there any more
			} else {
				js := newJWKSServer(t, jwksOf(t, es))
				js.mode.Store(int32(tc.mode))
				port = portOf(t, js.addr)
			}
			base := "http://" + gateway(t, bootstrap("never", port, portOf(t, up), jwksOf(t, newSigner(t, jose.HS256, "h"))))
			r := send(t, "GET", base+"/api", map[string]string{"authorization": "Bearer " + es.sign(t, defaults(nil))})
			if r.status != 401 || r.body != "Jwks remote fetch is failed" {
				t.Fatalf("got %d %q", r.status, r.body)
			}
		})
	}
}

// TestPayloadInMetadata: a verified token's claims are published on the stream for later
// filters, and pad_forward_payload_header pads the forwarded payload.
func TestPayloadInMetadata(t *testing.T) {
	es := newSigner(t, jose.ES256, "es")
	p := localProvider(t, jwksOf(t, es), "    payload_in_metadata: jwt\n    forward_payload_header: x-payload\n    pad_forward_payload_header: true\n")
	tok := es.sign(t, defaults(claims{"role": "admin", "n": 3}))
	st, v := p.verify(context.Background(), tok, nil, unscoped, time.Now().Unix())
	if st != stOK {
		t.Fatal(st)
	}
	s := &httpfilter.Stream{}
	p.apply(s, &s.Request, v, 0)
	got, ok := s.Metadata.Get(Name, "jwt")
	if !ok {
		t.Fatal("no metadata")
	}
	if c := got.(map[string]any); c["role"] != "admin" || c["n"] != float64(3) {
		t.Fatalf("metadata %v", c)
	}
	pl := s.Request.Value("x-payload")
	b, err := base64.URLEncoding.DecodeString(pl)
	if err != nil || !json.Valid(b) {
		t.Fatalf("padded payload %q: %v", pl, err)
	}
}

// TestSimpleConfig runs the simple config's auth.jwt through the whole pipeline (simple →
// IR → xDS → data plane) against the real JWKS server: the route requiring a token refuses a
// request without one and passes a valid one with its claim header; the optional route
// passes both; a route without auth still strips the claim header a client forges.
func TestSimpleConfig(t *testing.T) {
	leak.Check(t)
	es := newSigner(t, jose.ES256, "es-1")
	js := newJWKSServer(t, jwksOf(t, es))
	up := loopback.HTTP(t, &loopback.Echo{Name: "echo"})
	ln := loopback.Listen(t)
	port := portOf(t, ln.Addr().String())
	ln.Close() // the simple config needs a port number; this one was free a moment ago
	base := "http://" + gateway(t, fmt.Sprintf(`
apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: jwt
  address: 127.0.0.1:%[4]s
  routes:
  - match: {prefix: /api}
    backend: app
    auth:
      jwt: {issuer: %[1]s, audiences: [api], jwksURI: "http://idp.test/jwks", jwksBackend: idp, claimHeaders: {X-User: sub}}
  - match: {prefix: /docs}
    backend: app
    auth:
      jwt: {issuer: %[1]s, audiences: [api], jwksURI: "http://idp.test/jwks", jwksBackend: idp, claimHeaders: {X-User: sub}, optional: true}
  - backend: app
backends:
- name: app
  endpoints: ["%[2]s"]
- name: idp
  endpoints: ["%[3]s"]
`, testIssuer, up, js.addr, port))
	tok := es.sign(t, defaults(nil))
	tests := []struct {
		name   string
		path   string
		header map[string]string
		status int
		user   string
	}{
		{name: "required, missing", path: "/api", status: 401},
		{name: "required, valid", path: "/api", header: map[string]string{"authorization": "Bearer " + tok}, status: 200, user: "alice"},
		{name: "required, forged claim header", path: "/api", header: map[string]string{"authorization": "Bearer " + tok, "x-user": "root"}, status: 200, user: "alice"},
		{name: "optional, missing", path: "/docs", status: 200},
		{name: "optional, invalid", path: "/docs", header: map[string]string{"authorization": "Bearer x.y.z"}, status: 401},
		{name: "no auth, forged claim header", path: "/", header: map[string]string{"x-user": "root"}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, "GET", base+tc.path, tc.header)
			if r.status != tc.status {
				t.Fatalf("got %d %q, want %d", r.status, r.body, tc.status)
			}
			if r.status == 200 && r.echo.Header.Get("x-user") != tc.user {
				t.Fatalf("x-user %q reached the backend, want %q", r.echo.Header.Get("x-user"), tc.user)
			}
		})
	}
}

// TestClientGivesUp: a client that disconnects while its request waits for the JWKS leaves
// nothing behind (the stream's wait selects on its context; leak.Check sees the rest end).
func TestClientGivesUp(t *testing.T) {
	leak.Check(t)
	es := newSigner(t, jose.ES256, "es")
	js := newJWKSServer(t, jwksOf(t, es))
	js.mode.Store(int32(jwksSlow))
	up := loopback.HTTP(t, &loopback.Echo{Name: "echo"})
	addr := gateway(t, bootstrap("gaveup", portOf(t, js.addr), portOf(t, up), jwksOf(t, newSigner(t, jose.HS256, "h"))))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /api HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", es.sign(t, defaults(nil)))
	wait.For(t, "the JWKS request", func() bool { return js.hits.Load() > 0 })
	c.Close()
}
