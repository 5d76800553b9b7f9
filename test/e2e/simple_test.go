package e2e

import (
	"bufio"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// simpleConfig is the Nuncio simple format: a listener with IPv4 and one on IPv6 loopback,
// weighted backends, a redirect, a direct answer, header edits, a rate limit and a TLS backend.
const simpleConfig = `
apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: limited
  address: 127.0.0.1:{{.Port "limited"}}
  maxConnections: 2
  routes:
  - {name: health, match: {path: /healthz}, respond: {status: 200, body: "ok"}}
- name: web
  address: 127.0.0.1:{{.Port "web"}}
  routes:
  - name: health
    match: {path: /healthz}
    respond: {status: 200, body: "ok"}
  - name: old
    match: {prefix: /old/}
    redirect: {path: /new, code: 302}
  - name: split
    match: {prefix: /split}
    backends: [{name: a, weight: 1}, {name: b, weight: 1}]
  - name: secure
    match: {prefix: /secure/}
    backend: tls
    rewrite: {prefix: /}
  - name: rate-limited
    match: {prefix: /limited}
    backend: a
    rateLimit: {requests: 2, per: 1h}
  - name: app
    backend: a
    headers: {request: {set: {x-from: nuncio}}, response: {add: {x-served: "yes"}}}
{{if .Data.v6}}
- name: v6
  address: "[::1]:{{.Port "v6"}}"
  routes:
  - {name: any, respond: {status: 200, body: "v6"}}
{{end}}
backends:
- name: a
  endpoints: ["127.0.0.1:{{.Data.a}}"]
- name: b
  endpoints: ["127.0.0.1:{{.Data.b}}"]
- name: tls
  endpoints: ["127.0.0.1:{{.Data.tls}}"]
  tls: {sni: example.com, ca: "{{.Data.ca}}"}
`

func ipv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func TestSimpleConfig(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	_, pa := hostPort(a)
	_, pb := hostPort(b)
	tlsUp := newTLSEcho(t)
	_, pt := hostPort(tlsUp)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw}), 0o644)
	v6 := ipv6Loopback()
	p := startProxy(t, simpleConfig, map[string]any{"a": pa, "b": pb, "tls": pt, "ca": caFile, "v6": v6})
	c := noRedirect()

	t.Run("respond", func(t *testing.T) {
		resp, body := do(t, c, "GET", p.url("web", "/healthz"), nil, nil)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		resp, _ := do(t, c, "GET", p.url("web", "/old/x"), nil, nil)
		if resp.StatusCode != 302 || !strings.HasSuffix(resp.Header.Get("Location"), "/new") {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("header edits", func(t *testing.T) {
		resp, body := do(t, c, "GET", p.url("web", "/app"), nil, nil)
		e := decodeEcho(t, body)
		if http.Header(e.Header).Get("X-From") != "nuncio" || resp.Header.Get("X-Served") != "yes" {
			t.Fatalf("request headers %v, response headers %v", e.Header, resp.Header)
		}
	})
	t.Run("rate limit per client", func(t *testing.T) {
		var got []int
		for range 3 {
			resp, _ := do(t, c, "GET", p.url("web", "/limited"), nil, nil)
			got = append(got, resp.StatusCode)
		}
		if got[0] != 200 || got[1] != 200 || got[2] != 429 {
			t.Fatalf("statuses %v, want [200 200 429]", got)
		}
	})
	t.Run("weighted split reaches both", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 100; i++ {
			_, body := do(t, c, "GET", p.url("web", "/split"), nil, nil)
			seen[decodeEcho(t, body).Server]++
		}
		if seen["a"] == 0 || seen["b"] == 0 {
			t.Fatalf("split %v", seen)
		}
	})
	t.Run("TLS backend verified against its CA", func(t *testing.T) {
		resp, body := do(t, c, "GET", p.url("web", "/secure/x"), nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if e := decodeEcho(t, body); e.Server != "tls" || e.Path != "/x" {
			t.Fatalf("answered by %q at %q", e.Server, e.Path)
		}
	})
	t.Run("connection limit", func(t *testing.T) {
		// Two connections held open use the whole budget; a third is closed at once.
		var held []net.Conn
		for i := 0; i < 2; i++ {
			conn, err := net.Dial("tcp", p.addr("limited"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != 200 {
				t.Fatalf("held connection %d: %v", i, err)
			}
			held = append(held, conn)
		}
		extra, err := net.Dial("tcp", p.addr("limited"))
		if err != nil {
			t.Fatal(err)
		}
		defer extra.Close()
		io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		extra.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := http.ReadResponse(bufio.NewReader(extra), nil); err == nil {
			t.Fatal("connection over the limit was served")
		}
		for _, h := range held {
			h.Close()
		}
	})
	t.Run("IPv6 listener", func(t *testing.T) {
		if !v6 {
			t.Skip("no IPv6 loopback on this machine")
		}
		resp, err := http.Get("http://[::1]:" + itoa(p.ports["v6"]) + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "v6" {
			t.Fatalf("%q", b)
		}
	})
}

// newTLSEcho runs an echo upstream over TLS with httptest's certificate (valid for
// example.com and 127.0.0.1).
func newTLSEcho(t *testing.T) *httptest.Server {
	s := httptest.NewTLSServer(echoHandler("tls"))
	t.Cleanup(s.Close)
	return s
}
