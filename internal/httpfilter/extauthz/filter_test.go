package extauthz

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/server"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// authServer is a real HTTP authorization service on loopback. What it answers depends on
// the path of the check request, which is path_prefix + the client's path.
type authServer struct {
	mu     sync.Mutex
	checks []*http.Request
	bodies []string
	// started is signalled when a /slow check arrives; cancelled when its request ends.
	started, cancelled chan struct{}
	addr               string
}

func newAuthServer(t *testing.T) *authServer {
	as := &authServer{started: make(chan struct{}, 16), cancelled: make(chan struct{}, 16)}
	as.addr = loopback.HTTP(t, as)
	return as
}

func (as *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	as.mu.Lock()
	as.checks = append(as.checks, r)
	as.bodies = append(as.bodies, string(b))
	as.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/auth")
	switch {
	case strings.HasPrefix(p, "/allow"):
		w.Header().Set("x-user", "alice")
		w.Header().Add("x-groups", "a")
		w.Header().Add("x-groups", "b")
		w.Header().Set("x-envoy-auth-headers-to-remove", "x-secret, x-other")
		w.Header().Set("x-client-ok", "yes")
		w.Header().Set("x-unlisted", "no")
		w.WriteHeader(200)
	case strings.HasPrefix(p, "/created"):
		w.WriteHeader(201)
	case strings.HasPrefix(p, "/deny"):
		w.Header().Set("www-authenticate", `Basic realm="test"`)
		w.Header().Set("x-deny-reason", "nope")
		w.Header().Set("x-unlisted", "no")
		w.Header().Set("content-type", "text/html")
		w.WriteHeader(401)
		io.WriteString(w, "<p>go away</p>")
	case strings.HasPrefix(p, "/unavailable"):
		w.WriteHeader(503)
	case strings.HasPrefix(p, "/slow"):
		as.started <- struct{}{}
		<-r.Context().Done()
		as.cancelled <- struct{}{}
	case strings.HasPrefix(p, "/garbage"):
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			io.WriteString(c, "NONSENSE FROM THE AUTH SERVER\r\n\r\n")
			c.Close()
		}
	case strings.HasPrefix(p, "/reset"):
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	default:
		w.WriteHeader(404)
	}
}

func (as *authServer) lastCheck(t *testing.T) (*http.Request, string) {
	t.Helper()
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.checks) == 0 {
		t.Fatal("the authorization service got no check")
	}
	return as.checks[len(as.checks)-1], as.bodies[len(as.bodies)-1]
}

func (as *authServer) count() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return len(as.checks)
}

// gateway runs the whole data plane (server.Run) on the Envoy bootstrap yaml until the test
// ends, and returns the address of its listener "authz".
func gateway(t testing.TB, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler), DrainTime: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	var addr string
	wait.For(t, "the listener", func() bool {
		select {
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		default:
		}
		for _, l := range s.ListenerStatus() {
			if l.Name == "authz" {
				addr = l.Address.String()
			}
		}
		return addr != ""
	})
	return addr
}

func portOf(t testing.TB, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// bootstrap is a gateway whose listener "authz" (stat_prefix ingress) runs ext_authz with
// the given extra fields over the cluster "authz" at authAddr, then the router to an echo
// upstream. /off disables the check; /nobody turns body buffering off; /ctx sets
// context_extensions.
func bootstrap(t testing.TB, authAddr, upstreamAddr, extra string) string {
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: authz
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /off}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    disabled: true
              - match: {prefix: /allow/nobody}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.ext_authz:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                    check_settings: {disable_request_body_buffering: true, context_extensions: {k: v}}
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              http_service:
                server_uri: {uri: "http://auth.local", cluster: authz, timeout: 0.5s}
                path_prefix: /auth
                authorization_request:
                  allowed_headers: {patterns: [{exact: x-keep}, {prefix: x-envoy}]}
                  headers_to_add: [{key: x-from-gateway, value: "1"}]
                authorization_response:
                  allowed_upstream_headers: {patterns: [{exact: x-user}]}
                  allowed_upstream_headers_to_append: {patterns: [{exact: x-groups}]}
                  allowed_client_headers: {patterns: [{exact: x-deny-reason}, {exact: content-type}]}
                  allowed_client_headers_on_success: {patterns: [{exact: x-client-ok}]}
%[3]s
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: authz
    type: STATIC
    load_assignment:
      cluster_name: authz
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[1]s}}}}]}]
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]s}}}}]}]
`, portOf(t, authAddr), portOf(t, upstreamAddr), extra)
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, url, body string, hdr map[string]string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, string(b)}
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestCheck runs requests through a real gateway with a real authorization service and a
// real upstream: what is allowed, denied and what each side sees.
func TestCheck(t *testing.T) {
	leak.Check(t)
	as := newAuthServer(t)
	echo := &loopback.Echo{Name: "up"}
	upAddr := loopback.HTTP(t, echo)
	gw := gateway(t, bootstrap(t, as.addr, upAddr, `              with_request_body: {max_request_bytes: 16}
              stat_prefix: main`))
	c := newClient(t)
	base := "http://" + gw

	t.Run("allowed: upstream sees the service's headers", func(t *testing.T) {
		r := do(t, c, "GET", base+"/allow/x?q=1", "", map[string]string{
			"x-keep": "k", "x-drop": "d", "x-secret": "s", "x-user": "mallory", "authorization": "Bearer t",
			"x-envoy-auth-failure-mode-allowed": "true",
		})
		if r.status != 200 {
			t.Fatalf("status %d %q", r.status, r.body)
		}
		up, err := loopback.DecodeEcho([]byte(r.body))
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"X-User": "alice", "X-Groups": "a,b", "X-Secret": "", "X-Keep": "k", "X-Envoy-Auth-Failure-Mode-Allowed": "", "X-Unlisted": ""} {
			if got := strings.Join(up.Header.Values(name), ","); got != want {
				t.Errorf("upstream %s = %q, want %q", name, got, want)
			}
		}
		if got := r.header.Get("x-client-ok"); got != "yes" {
			t.Errorf("client x-client-ok = %q, want yes", got)
		}
		if r.header.Get("x-unlisted") != "" {
			t.Error("an unlisted header of the answer reached the client")
		}
		chk, body := as.lastCheck(t)
		if chk.Method != "GET" || chk.URL.RequestURI() != "/auth/allow/x?q=1" || chk.Host != gw {
			t.Errorf("check request %s %s host %s", chk.Method, chk.URL.RequestURI(), chk.Host)
		}
		for name, want := range map[string]string{"X-Keep": "k", "X-Drop": "", "Authorization": "Bearer t", "X-From-Gateway": "1", "X-Envoy-Auth-Failure-Mode-Allowed": ""} {
			if got := chk.Header.Get(name); got != want {
				t.Errorf("check %s = %q, want %q", name, got, want)
			}
		}
		if body != "" {
			t.Errorf("check body %q for a request without one", body)
		}
	})
	t.Run("any 2xx allows", func(t *testing.T) {
		if r := do(t, c, "GET", base+"/created", "", nil); r.status != 200 {
			t.Errorf("status %d", r.status)
		}
	})
	t.Run("body goes to the service", func(t *testing.T) {
		r := do(t, c, "POST", base+"/allow/body", "hello", nil)
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		up, _ := loopback.DecodeEcho([]byte(r.body))
		if up.Body != "hello" {
			t.Errorf("upstream body %q", up.Body)
		}
		chk, body := as.lastCheck(t)
		if body != "hello" || chk.Method != "POST" || chk.Header.Get("x-envoy-auth-partial-body") != "false" {
			t.Errorf("check %s body %q partial %q", chk.Method, body, chk.Header.Get("x-envoy-auth-partial-body"))
		}
	})
	t.Run("body over max_request_bytes", func(t *testing.T) {
		n := as.count()
		if r := do(t, c, "POST", base+"/allow/big", strings.Repeat("x", 17), nil); r.status != 413 {
			t.Errorf("status %d", r.status)
		}
		if as.count() != n {
			t.Error("an oversized body was sent to the service")
		}
	})
	t.Run("route without body buffering", func(t *testing.T) {
		r := do(t, c, "POST", base+"/allow/nobody", "hello", nil)
		up, _ := loopback.DecodeEcho([]byte(r.body))
		if _, body := as.lastCheck(t); r.status != 200 || body != "" || up.Body != "hello" {
			t.Errorf("status %d, check body %q, upstream body %q", r.status, body, up.Body)
		}
	})
	t.Run("denied: the service's status, body and allowed headers", func(t *testing.T) {
		n := len(echo.Requests())
		r := do(t, c, "GET", base+"/deny", "", nil)
		if r.status != 401 || r.body != "<p>go away</p>" {
			t.Fatalf("got %d %q", r.status, r.body)
		}
		for name, want := range map[string]string{"X-Deny-Reason": "nope", "Www-Authenticate": `Basic realm="test"`, "Content-Type": "text/html", "X-Unlisted": ""} {
			if got := r.header.Get(name); got != want {
				t.Errorf("client %s = %q, want %q", name, got, want)
			}
		}
		if len(echo.Requests()) != n {
			t.Error("a denied request reached the upstream")
		}
	})
	t.Run("5xx from the service is a denial", func(t *testing.T) {
		if r := do(t, c, "GET", base+"/unavailable", "", nil); r.status != 503 {
			t.Errorf("status %d", r.status)
		}
	})
	for _, path := range []string{"/garbage", "/reset", "/slow"} {
		t.Run("error "+path+" answers status_on_error", func(t *testing.T) {
			if r := do(t, c, "GET", base+path, "", nil); r.status != 403 {
				t.Errorf("status %d %q", r.status, r.body)
			}
		})
	}
	// The slow check timed out; its connection was closed.
	<-as.started
	<-as.cancelled
	t.Run("disabled route", func(t *testing.T) {
		n := as.count()
		if r := do(t, c, "GET", base+"/off", "", nil); r.status != 200 || as.count() != n {
			t.Errorf("status %d, checks %d → %d", r.status, n, as.count())
		}
	})
	for name, want := range map[string]uint64{"ok": 4, "denied": 2, "error": 3, "disabled": 1, "failure_mode_allowed": 0} {
		full := "http.ingress.ext_authz.main." + name
		var got uint64
		for _, s := range stats.Default.All() {
			if s.Name == full {
				got = uint64(s.Value)
			}
		}
		if got != want {
			t.Errorf("%s = %d, want %d", full, got, want)
		}
	}
}

// TestFailureModes covers an authorization service that is down: status_on_error, or
// failure_mode_allow with its header.
func TestFailureModes(t *testing.T) {
	leak.Check(t)
	down := loopback.Listen(t)
	downAddr := down.Addr().String()
	down.Close()
	echo := &loopback.Echo{Name: "up"}
	upAddr := loopback.HTTP(t, echo)
	for _, tc := range []struct {
		name, extra string
		wantStatus  int
		wantHeader  string
	}{
		{name: "default 403", wantStatus: 403},
		{name: "status_on_error", extra: "              status_on_error: {code: 503}", wantStatus: 503},
		{name: "failure_mode_allow", extra: "              failure_mode_allow: true", wantStatus: 200},
		{name: "failure_mode_allow with header", extra: "              failure_mode_allow: true\n              failure_mode_allow_header_add: true", wantStatus: 200, wantHeader: "true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := gateway(t, bootstrap(t, downAddr, upAddr, tc.extra))
			r := do(t, newClient(t), "GET", "http://"+gw+"/allow", "", map[string]string{"x-envoy-auth-failure-mode-allowed": "forged"})
			if r.status != tc.wantStatus {
				t.Fatalf("status %d %q", r.status, r.body)
			}
			if r.status == 200 {
				up, _ := loopback.DecodeEcho([]byte(r.body))
				if got := up.Header.Get("x-envoy-auth-failure-mode-allowed"); got != tc.wantHeader {
					t.Errorf("upstream x-envoy-auth-failure-mode-allowed = %q, want %q", got, tc.wantHeader)
				}
			}
		})
	}
}

// TestClientGoesAway checks that a client closing its connection during a check cancels
// the check.
func TestClientGoesAway(t *testing.T) {
	leak.Check(t)
	as := newAuthServer(t)
	upAddr := loopback.HTTP(t, &loopback.Echo{Name: "up"})
	// A long timeout: only the client's leaving can end the check.
	yaml := strings.Replace(bootstrap(t, as.addr, upAddr, ""), "timeout: 0.5s", "timeout: 60s", 1)
	gw := gateway(t, yaml)
	conn, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-as.started
	conn.Close()
	select {
	case <-as.cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the check was not cancelled when the client went away")
	}
}

// TestPathOverride checks that path_override replaces the check's path whatever the
// client asked for.
func TestPathOverride(t *testing.T) {
	leak.Check(t)
	as := newAuthServer(t)
	upAddr := loopback.HTTP(t, &loopback.Echo{Name: "up"})
	yaml := strings.Replace(bootstrap(t, as.addr, upAddr, ""), "path_prefix: /auth", "path_override: /auth/allow?from=gw", 1)
	gw := gateway(t, yaml)
	r := do(t, newClient(t), "GET", "http://"+gw+"/deny/anything?q=1", "", nil)
	if r.status != 200 {
		t.Fatalf("status %d %q", r.status, r.body)
	}
	if chk, _ := as.lastCheck(t); chk.URL.RequestURI() != "/auth/allow?from=gw" {
		t.Errorf("check path %q", chk.URL.RequestURI())
	}
}

// ingressShape is the configuration the controller's xdsgen emits for an Ingress with
// auth-url, auth-response-headers and auth-request-redirect (see
// internal/controller/ingress/testdata/ext-auth-headers.out.yaml): one filter per service,
// disabled in the chain, enabled by the routes that use it.
func ingressShape(t testing.TB, authAddr, upstreamAddr string) string {
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: authz
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /public}
                route: {cluster: upstream}
              - match: {prefix: /}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.ext_authz/http://auth:80:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute
                      check_settings: {}
          http_filters:
          - name: envoy.filters.http.ext_authz/http://auth:80
            disabled: true
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              http_service:
                authorization_request:
                  headers_to_add: [{key: x-auth-request-redirect, value: "https://app.example.com/"}]
                authorization_response:
                  allowed_upstream_headers: {patterns: [{exact: x-user, ignore_case: true}, {exact: x-groups, ignore_case: true}]}
                path_override: /auth/allow?app=web
                server_uri: {cluster: "http://auth:80", timeout: 5s, uri: "http://auth/auth/allow?app=web"}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: "http://auth:80"
    type: STATIC
    load_assignment:
      cluster_name: "http://auth:80"
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[1]s}}}}]}]
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]s}}}}]}]
`, portOf(t, authAddr), portOf(t, upstreamAddr))
}

// TestIngressShape runs the controller's ext_authz shape through the data plane: routes that
// enable the filter are checked at the auth URL, with the redirect header, and get the
// allowed answer headers; a route that does not enable it is not checked.
func TestIngressShape(t *testing.T) {
	leak.Check(t)
	as := newAuthServer(t)
	upAddr := loopback.HTTP(t, &loopback.Echo{Name: "up"})
	gw := gateway(t, ingressShape(t, as.addr, upAddr))
	c := newClient(t)
	r := do(t, c, "GET", "http://"+gw+"/app", "", map[string]string{"x-user": "mallory"})
	if r.status != 200 {
		t.Fatalf("status %d %q", r.status, r.body)
	}
	up, _ := loopback.DecodeEcho([]byte(r.body))
	if got := strings.Join(up.Header.Values("x-user"), ","); got != "alice" {
		t.Errorf("upstream x-user = %q, want alice", got)
	}
	if got := strings.Join(up.Header.Values("x-groups"), ","); got != "a,b" {
		t.Errorf("upstream x-groups = %q, want a,b", got)
	}
	chk, _ := as.lastCheck(t)
	if chk.URL.RequestURI() != "/auth/allow?app=web" || chk.Header.Get("x-auth-request-redirect") != "https://app.example.com/" {
		t.Errorf("check %s, x-auth-request-redirect %q", chk.URL.RequestURI(), chk.Header.Get("x-auth-request-redirect"))
	}
	n := as.count()
	if r := do(t, c, "GET", "http://"+gw+"/public", "", nil); r.status != 200 || as.count() != n {
		t.Errorf("public route: status %d, checked %v", r.status, as.count() != n)
	}
}
