package basicauth_test

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/testutil/dataplane"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func shaEntry(user, password string) string {
	d := sha1.Sum([]byte(password))
	return user + ":{SHA}" + base64.StdEncoding.EncodeToString(d[:])
}

func bcryptEntry(t *testing.T, user, password string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -B writes $2y$; Go writes $2a$: the same algorithm.
	return user + ":$2y$" + string(h[4:])
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// htpasswd is a file of lines as a YAML double-quoted string.
func htpasswd(lines ...string) string {
	return strconv.Quote(strings.Join(lines, "\n"))
}

func TestBasicAuthThroughDataPlane(t *testing.T) {
	leak.Check(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream user=%q", r.Header.Values("x-user"))
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())

	// dave's entry is `openssl passwd -apr1 -salt saltsalt secret`.
	users := htpasswd("# htpasswd", shaEntry("alice", "alice-pw"), bcryptEntry(t, "bob", "bob-pw"), "dave:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", "")
	routeUsers := htpasswd(shaEntry("carol", "carol-pw"))
	listener := func(name, extra string) string {
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
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /carol}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.basic_auth:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuthPerRoute
                    users: {inline_string: %[2]s}
                    realm: carol's "place"
              - match: {prefix: /public}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.basic_auth:
                    "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig
                    disabled: true
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.basic_auth
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuth
              users: {inline_string: %[3]s}
              forward_username_header: x-user
              %[4]s
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`,
			name, routeUsers, users, extra)
	}
	yaml := "static_resources:\n  listeners:" + listener("basic_default", "") +
		listener("basic_alt", "authentication_header: X-Auth\n              realm: staff") + fmt.Sprintf(`
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]
`, port)
	p := dataplane.Start(t, yaml)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: wait.Timeout}

	const (
		missing = "User authentication failed. Missing username and password."
		scheme  = "User authentication failed. Expected 'Basic' authentication scheme."
		format  = "User authentication failed. Invalid basic credential format."
		invalid = "User authentication failed. Invalid username/password combination."
	)
	for _, tc := range []struct {
		name      string
		listener  string
		path      string
		headers   []string
		status    int
		body      string
		challenge string // WWW-Authenticate of a 401
	}{
		{name: "SHA user", path: "/x", headers: []string{"authorization", basic("alice", "alice-pw")}, status: 200, body: `upstream user=["alice"]`},
		{name: "bcrypt user", path: "/x", headers: []string{"authorization", basic("bob", "bob-pw")}, status: 200, body: `upstream user=["bob"]`},
		{name: "bcrypt user again (remembered)", path: "/x", headers: []string{"authorization", basic("bob", "bob-pw")}, status: 200, body: `upstream user=["bob"]`},
		{name: "apr1 user", path: "/x", headers: []string{"authorization", basic("dave", "secret")}, status: 200, body: `upstream user=["dave"]`},
		{name: "wrong apr1 password", path: "/x", headers: []string{"authorization", basic("dave", "Secret")}, status: 401, body: invalid},
		{name: "lower-case scheme, no padding", path: "/x", headers: []string{"authorization", "basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:alice-pw"))}, status: 200, body: `upstream user=["alice"]`},
		{name: "forged username header is replaced", path: "/x", headers: []string{"authorization", basic("alice", "alice-pw"), "x-user", "root"}, status: 200, body: `upstream user=["alice"]`},
		{name: "password with a colon", path: "/x", headers: []string{"authorization", basic("alice", "alice-pw:")}, status: 401, body: invalid},
		{name: "no credentials", path: "/x?q=1", status: 401, body: missing, challenge: `Basic realm="http://HOST/x?q=1"`},
		{name: "bearer token", path: "/x", headers: []string{"authorization", "Bearer abc"}, status: 401, body: scheme},
		{name: "scheme without credentials", path: "/x", headers: []string{"authorization", "Basic"}, status: 401, body: scheme},
		{name: "bad base64", path: "/x", headers: []string{"authorization", "Basic !!!!"}, status: 401, body: format},
		{name: "no colon", path: "/x", headers: []string{"authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))}, status: 401, body: format},
		{name: "oversized credentials", path: "/x", headers: []string{"authorization", basic("alice", strings.Repeat("x", 4000))}, status: 401, body: format},
		{name: "wrong password", path: "/x", headers: []string{"authorization", basic("alice", "nope")}, status: 401, body: invalid},
		{name: "wrong bcrypt password", path: "/x", headers: []string{"authorization", basic("bob", "alice-pw")}, status: 401, body: invalid},
		{name: "unknown user", path: "/x", headers: []string{"authorization", basic("mallory", "alice-pw")}, status: 401, body: invalid},
		{name: "per-route users replace the filter's", path: "/carol", headers: []string{"authorization", basic("alice", "alice-pw")}, status: 401, body: invalid, challenge: `Basic realm="carol's \"place\""`},
		{name: "per-route user", path: "/carol", headers: []string{"authorization", basic("carol", "carol-pw")}, status: 200, body: `upstream user=["carol"]`},
		{name: "disabled on a route", path: "/public", status: 200, body: `upstream user=[]`},
		{name: "credentials from another header", listener: "basic_alt", path: "/x", headers: []string{"x-auth", basic("alice", "alice-pw")}, status: 200, body: `upstream user=["alice"]`},
		{name: "Authorization ignored when another header is set", listener: "basic_alt", path: "/x", headers: []string{"authorization", basic("alice", "alice-pw")}, status: 401, body: missing, challenge: `Basic realm="staff"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.listener
			if l == "" {
				l = "basic_default"
			}
			addr := p.Addr(t, l)
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
			if resp.StatusCode != tc.status || string(b) != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, tc.body)
			}
			want := ""
			if tc.status == 401 {
				want = strings.ReplaceAll(tc.challenge, "HOST", addr)
				if want == "" {
					want = `Basic realm="http://` + addr + tc.path + `"`
				}
			}
			if got := resp.Header.Get("www-authenticate"); got != want {
				t.Errorf("www-authenticate %q, want %q", got, want)
			}
		})
	}
	if a, d := p.Counter("http.basic_default.basic_auth.allowed"), p.Counter("http.basic_default.basic_auth.denied"); a != 7 || d != 12 {
		t.Errorf("allowed %d, denied %d; want 7, 12", a, d)
	}
}
