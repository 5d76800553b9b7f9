package rbac_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/dataplane"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// hcm is a connection manager named prefix with an access log at logPath, the given extra
// fields, routes and rbac filter config, forwarding to the cluster "upstream".
func hcm(prefix, logPath, extra, routes, rbac string) string {
	return fmt.Sprintf(`
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          %s
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format: {text_format_source: {inline_string: "%%REQ(X-TEST-ID)%% %%RESPONSE_CODE%% %%RESPONSE_FLAGS%% %%RESPONSE_CODE_DETAILS%%\n"}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:%s
              - match: {prefix: /}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              %s
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`,
		prefix, extra, logPath, routes, indent(rbac, "              "))
}

func indent(s, pad string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// perRoute is a route on path whose RBACPerRoute is rbac (YAML of an RBAC filter config, or
// "" for an RBACPerRoute without one).
func perRoute(path, rbac string) string {
	r := "{}"
	if rbac != "" {
		r = "\n                      " + indent(rbac, "                      ")
	}
	return fmt.Sprintf(`
              - match: {prefix: %s}
                route: {cluster: upstream}
                typed_per_filter_config:
                  envoy.filters.http.rbac:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
                    rbac: %s`, path, r)
}

const edgeRoutes = `
rules:
  action: ALLOW
  policies:
    local:
      permissions:
      - and_rules: {rules: [{destination_ip: {address_prefix: 127.0.0.1, prefix_len: 32}}, {destination_port_range: {start: 1, end: 65536}}]}
      principals:
      - not_id: {remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}
shadow_rules:
  action: DENY
  policies:
    everything: {permissions: [{any: true}], principals: [{any: true}]}
`

func TestRBACThroughDataPlane(t *testing.T) {
	// No goroutine check here: the access log output (which shows the RBAC response flag)
	// lives for the process.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())

	dir := t.TempDir()
	ca := certs.CA(t, "clients")
	server := certs.SelfSigned(t, "api.example")
	for name, data := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": server.CertPEM, "server.key": server.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "access.log")

	routes := perRoute("/loopback", `
rules:
  action: ALLOW
  policies:
    loopback: {permissions: [{any: true}], principals: [{remote_ip: {address_prefix: 127.0.0.0, prefix_len: 8}}]}`) +
		perRoute("/ten", `
rules:
  action: ALLOW
  policies:
    ten: {permissions: [{any: true}], principals: [{remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]}`) +
		perRoute("/method", `
rules:
  action: ALLOW
  policies:
    public-get:
      permissions:
      - and_rules:
          rules:
          - header: {name: ":method", string_match: {exact: GET}}
          - url_path: {path: {prefix: /method/pub}}
      principals: [{any: true}]`) +
		perRoute("/deny-header", `
rules:
  action: DENY
  policies:
    bad-header: {permissions: [{header: {name: x-bad, present_match: true}}], principals: [{any: true}]}`) +
		perRoute("/log", `
rules:
  action: LOG
  policies:
    all: {permissions: [{any: true}], principals: [{any: true}]}`) +
		perRoute("/off", "")

	proxiedRules := `
rules:
  action: ALLOW
  policies:
    ten-remote: {permissions: [{url_path: {path: {exact: /remote}}}], principals: [{remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]}
    ten-direct: {permissions: [{url_path: {path: {exact: /direct}}}], principals: [{direct_remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]}`

	mtlsRoutes := perRoute("/any-cert", `
rules:
  action: ALLOW
  policies:
    tls: {permissions: [{any: true}], principals: [{authenticated: {}}]}`) +
		perRoute("/sni", `
rules:
  action: ALLOW
  policies:
    sni: {permissions: [{requested_server_name: {exact: api.example}}], principals: [{any: true}]}`)
	mtlsRules := `
rules:
  action: ALLOW
  policies:
    spiffe-a: {permissions: [{any: true}], principals: [{authenticated: {principal_name: {exact: "spiffe://example.org/ns/a"}}}]}
    good-dns: {permissions: [{any: true}], principals: [{authenticated: {principal_name: {suffix: ".good.example"}}}]}
    subject: {permissions: [{any: true}], principals: [{authenticated: {principal_name: {exact: "CN=bob,O=Example"}}}]}`

	yaml := fmt.Sprintf(`
static_resources:
  listeners:
  - name: edge
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:%[1]s
  - name: proxied
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:%[2]s
  - name: mtls
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates: [{certificate_chain: {filename: %[3]s/server.pem}, private_key: {filename: %[3]s/server.key}}]
            validation_context: {trusted_ca: {filename: %[3]s/ca.pem}}
      filters:%[4]s
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[5]s}}}}]}]
`,
		hcm("rbac_edge", logPath, "use_remote_address: true", routes, edgeRoutes),
		hcm("rbac_proxied", logPath, "use_remote_address: true\n          xff_num_trusted_hops: 1", "", proxiedRules),
		dir,
		hcm("rbac_mtls", logPath, "", mtlsRoutes, mtlsRules),
		port)
	p := dataplane.Start(t, yaml)

	plain := &http.Transport{}
	t.Cleanup(plain.CloseIdleConnections)
	mtlsClient := func(cert *certs.Cert, sni string) *http.Transport {
		tr := &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: server.Pool(), ServerName: sni, Certificates: []tls.Certificate{cert.TLS()},
		}}
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	issue := func(cn string, org []string, dns []string, uri string) *certs.Cert {
		tpl := &x509.Certificate{
			Subject: pkix.Name{CommonName: cn, Organization: org}, DNSNames: dns,
			NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if uri != "" {
			u, _ := url.Parse(uri)
			tpl.URIs = []*url.URL{u}
		}
		c, err := certs.New(tpl, ca)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	spiffeA := mtlsClient(issue("a", nil, nil, "spiffe://example.org/ns/a"), "api.example")
	spiffeB := mtlsClient(issue("b", nil, nil, "spiffe://example.org/ns/b"), "api.example")
	goodDNS := mtlsClient(issue("svc", nil, []string{"svc.good.example"}, ""), "api.example")
	bob := mtlsClient(issue("bob", []string{"Example"}, nil, ""), "api.example")
	mallory := mtlsClient(issue("mallory", []string{"Example"}, []string{"mallory.evil.example"}, ""), "api.example")
	otherSNI := mtlsClient(issue("c", nil, nil, "spiffe://example.org/ns/c"), "127.0.0.1")

	var wantLogs []string // access log line prefixes of the denials
	for _, tc := range []struct {
		name     string
		listener string
		tr       *http.Transport
		method   string
		path     string
		headers  []string
		status   int
		details  string // response code details of a denial
	}{
		{name: "chain policy allows loopback", listener: "edge", path: "/", status: 200},
		{name: "remote_ip in range", listener: "edge", path: "/loopback", status: 200},
		{name: "remote_ip out of range", listener: "edge", path: "/ten", status: 403, details: "rbac_access_denied_matched_policy[none]"},
		{name: "forged X-Forwarded-For is not trusted at the edge", listener: "edge", path: "/ten", headers: []string{"x-forwarded-for", "10.1.2.3"}, status: 403},
		{name: "method and path allowed", listener: "edge", path: "/method/pub/x?q=1", status: 200},
		{name: "wrong method", listener: "edge", method: "POST", path: "/method/pub", status: 403},
		{name: "query does not make a path", listener: "edge", path: "/method/priv?/method/pub", status: 403},
		{name: "deny policy matches", listener: "edge", path: "/deny-header", headers: []string{"x-bad", "1"}, status: 403, details: "rbac_access_denied_matched_policy[bad-header]"},
		{name: "deny policy does not match", listener: "edge", path: "/deny-header", status: 200},
		{name: "log action allows", listener: "edge", path: "/log", status: 200},
		{name: "per-route config without rbac turns the filter off", listener: "edge", path: "/off", status: 200},
		{name: "trusted hop gives remote_ip", listener: "proxied", path: "/remote", headers: []string{"x-forwarded-for", "10.1.2.3"}, status: 200},
		{name: "no forwarded address", listener: "proxied", path: "/remote", status: 403},
		{name: "direct_remote_ip ignores X-Forwarded-For", listener: "proxied", path: "/direct", headers: []string{"x-forwarded-for", "10.1.2.3"}, status: 403},
		{name: "URI SAN", listener: "mtls", tr: spiffeA, path: "/", status: 200},
		{name: "other URI SAN", listener: "mtls", tr: spiffeB, path: "/", status: 403},
		{name: "DNS SAN", listener: "mtls", tr: goodDNS, path: "/", status: 200},
		{name: "subject", listener: "mtls", tr: bob, path: "/", status: 200},
		{name: "DNS SAN before subject", listener: "mtls", tr: mallory, path: "/", status: 403},
		{name: "forged identity header", listener: "mtls", tr: spiffeB, path: "/", headers: []string{"x-forwarded-client-cert", "URI=spiffe://example.org/ns/a"}, status: 403},
		{name: "any authenticated peer", listener: "mtls", tr: spiffeB, path: "/any-cert", status: 200},
		{name: "requested server name", listener: "mtls", tr: spiffeB, path: "/sni", status: 200},
		{name: "other server name", listener: "mtls", tr: otherSNI, path: "/sni", status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, scheme := tc.tr, "https"
			if tr == nil {
				tr, scheme = plain, "http"
			}
			method := tc.method
			if method == "" {
				method = "GET"
			}
			req, _ := http.NewRequest(method, scheme+"://"+p.Addr(t, tc.listener)+tc.path, nil)
			req.Header.Set("x-test-id", tc.name)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := (&http.Client{Transport: tr, Timeout: wait.Timeout}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "upstream"
			if tc.status == 403 {
				want = "RBAC: access denied"
			}
			if resp.StatusCode != tc.status || string(b) != want {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, b, tc.status, want)
			}
			if tc.status != 403 {
				return
			}
			wantLog := tc.name + " 403 RBAC "
			if tc.details != "" {
				wantLog += tc.details
			}
			wantLogs = append(wantLogs, wantLog)
		})
	}
	// The access log shows the RBAC response flag and the policy that decided.
	wait.For(t, "the access log lines of the denials", func() bool {
		data, _ := os.ReadFile(logPath)
		lines := strings.Split(string(data), "\n")
		for _, w := range wantLogs {
			if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
				return false
			}
		}
		return true
	})
	for name, want := range map[string]uint64{
		"http.rbac_edge.rbac.allowed":        5, // not /off, which has no rules
		"http.rbac_edge.rbac.denied":         5,
		"http.rbac_edge.rbac.logged":         1,
		"http.rbac_edge.rbac.shadow_denied":  1, // only the chain's own config has shadow rules
		"http.rbac_proxied.rbac.allowed":     1,
		"http.rbac_proxied.rbac.denied":      2,
		"http.rbac_mtls.rbac.denied":         4,
		"http.rbac_mtls.rbac.shadow_allowed": 0,
	} {
		if got := p.Counter(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
}
