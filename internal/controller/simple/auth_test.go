package simple_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/testutil/dataplane"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// TestAuthThroughDataPlane serves a simple config with auth blocks through the whole data plane
// and sends allowed and denied requests: the translation's filters enforce what it says.
func TestAuthThroughDataPlane(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "backend") }))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	// The simple config wants a port: take a free one.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	p := dataplane.Start(t, fmt.Sprintf(`
apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: %s
  routes:
  - match: {prefix: /admin}
    backend: api
    auth:
      basic: {users: ["alice:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"], realm: Admin}
      allow: [127.0.0.0/8]
  - match: {prefix: /office}
    backend: api
    auth: {allow: [10.0.0.0/8]}
  - match: {prefix: /api}
    backend: api
    auth:
      cors: {allowOrigins: ["https://*.app.example"], maxAge: 10m}
  - backend: api
    auth: {deny: [127.0.0.1]}
backends:
- name: api
  endpoints: ["127.0.0.1:%s"]
`, listen, port))
	addr := p.Addr(t, "web")
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: wait.Timeout}
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		status  int
		header  [2]string // a response header and its value
	}{
		{name: "password and address", path: "/admin", headers: []string{"authorization", "Basic YWxpY2U6c2VjcmV0"}, status: 200},
		{name: "no password", path: "/admin", status: 401, header: [2]string{"www-authenticate", `Basic realm="Admin"`}},
		{name: "address not allowed", path: "/office", status: 403},
		{name: "preflight", method: "OPTIONS", path: "/api", headers: []string{"origin", "https://x.app.example", "access-control-request-method", "PUT"}, status: 200,
			header: [2]string{"access-control-allow-methods", "PUT"}},
		{name: "preflight max age", method: "OPTIONS", path: "/api", headers: []string{"origin", "https://x.app.example", "access-control-request-method", "PUT"}, status: 200,
			header: [2]string{"access-control-max-age", "600"}},
		{name: "denied address", path: "/", status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(cmpOr(tc.method, "GET"), "http://"+addr+tc.path, nil)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s: %q, want %q", tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
