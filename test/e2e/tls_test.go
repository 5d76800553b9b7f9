package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// tlsConfig serves two names with two certificates on one listener, selecting the filter
// chain by SNI, plus a plaintext chain for clients without TLS.
const tlsConfig = `
static_resources:
  listeners:
  - name: tls
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "tls"}}}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:
{{range $name := .Data.names}}
    - filter_chain_match: {server_names: ["{{$name}}.example.com"]}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: "{{$.Data.dir}}/{{$name}}.pem"}
              private_key: {filename: "{{$.Data.dir}}/{{$name}}-key.pem"}
      filters:
{{template "hcm"}}
          stat_prefix: {{$name}}
          upgrade_configs: [{upgrade_type: websocket}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/who"}
                direct_response: {status: 200, body: {inline_string: "{{$name}}"}}
              - match: {prefix: "/"}
                route: {cluster: echo}
{{template "router"}}
{{end}}
  clusters:
{{staticCluster "echo" .Data.echo}}
{{staticCluster "ws" .Data.ws}}
`

func TestTLSWithSNI(t *testing.T) {
	echoSrv := startEcho(t, "echo")
	_, pe := hostPort(echoSrv)
	wsSrv := startWebSocketEcho(t)
	_, pw := hostPort(wsSrv)
	dir := t.TempDir()
	_, _, poolA := certPair(t, dir, "alpha", "alpha.example.com")
	_, _, poolB := certPair(t, dir, "beta", "beta.example.com")
	px := startProxy(t, tlsConfig, map[string]any{"names": []string{"alpha", "beta"}, "echo": pe, "ws": pw, "dir": dir})

	tests := []struct {
		name     string
		sni      string
		pool     *x509.CertPool
		h2       bool
		wantBody string
		wantErr  bool
	}{
		{name: "alpha over h1", sni: "alpha.example.com", pool: poolA, wantBody: "alpha"},
		{name: "beta over h1", sni: "beta.example.com", pool: poolB, wantBody: "beta"},
		{name: "alpha over h2", sni: "alpha.example.com", pool: poolA, h2: true, wantBody: "alpha"},
		{name: "beta over h2", sni: "beta.example.com", pool: poolB, h2: true, wantBody: "beta"},
		{name: "beta certificate not trusted for alpha", sni: "alpha.example.com", pool: poolB, wantErr: true},
		{name: "unknown name has no chain", sni: "gamma.example.com", pool: poolA, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsClient(tc.pool, tc.sni, tc.h2)
			resp, err := c.Get("https://" + px.addr("tls") + "/who")
			if tc.wantErr {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded, want a TLS failure")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != tc.wantBody {
				t.Errorf("body %q, want %q", b, tc.wantBody)
			}
			if wantMajor := map[bool]int{true: 2, false: 1}[tc.h2]; resp.ProtoMajor != wantMajor {
				t.Errorf("protocol %s, want major %d", resp.Proto, wantMajor)
			}
			if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS state %+v", resp.TLS)
			}
		})
	}

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", px.addr("tls"), &tls.Config{
			ServerName: "alpha.example.com", RootCAs: poolA, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
		})
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})

	t.Run("proxied over TLS", func(t *testing.T) {
		c := tlsClient(poolA, "alpha.example.com", false)
		resp, err := c.Get("https://" + px.addr("tls") + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := decodeEcho(t, string(b))
		if got := http.Header(e.Header).Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("x-forwarded-proto %q, want https", got)
		}
	})
}

// websocketConfig routes /ws to a WebSocket echo server with upgrades enabled.
const websocketConfig = `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "web"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: web
          upgrade_configs: [{upgrade_type: websocket}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/noupgrade"}
                route: {cluster: ws, upgrade_configs: [{upgrade_type: websocket, enabled: false}]}
              - match: {prefix: "/"}
                route: {cluster: ws}
{{template "router"}}
  clusters:
{{staticCluster "ws" .Data.ws}}
`

// startWebSocketEcho runs a WebSocket server that echoes every message.
func startWebSocketEcho(t *testing.T) *httptest.Server {
	s := httptest.NewServer(websocket.Handler(func(c *websocket.Conn) {
		// Message by message: io.Copy would re-frame large messages.
		for {
			var msg string
			if err := websocket.Message.Receive(c, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(c, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestWebSocket(t *testing.T) {
	ws := startWebSocketEcho(t)
	_, pw := hostPort(ws)
	p := startProxy(t, websocketConfig, map[string]any{"ws": pw})

	cfg, err := websocket.NewConfig("ws://"+p.addr("web")+"/echo", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("websocket dial through the proxy: %v", err)
	}
	defer conn.Close()
	for _, msg := range []string{"hello", strings.Repeat("x", 100<<10), "bye"} {
		if err := websocket.Message.Send(conn, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.Message.Receive(conn, &got); err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(got))
		}
	}

	// A route that disables upgrades refuses them as Envoy does.
	cfg2, _ := websocket.NewConfig("ws://"+p.addr("web")+"/noupgrade", "http://localhost/")
	if c2, err := websocket.DialConfig(cfg2); err == nil {
		c2.Close()
		t.Fatal("upgrade allowed on a route that disables it")
	}
	out := rawExchange(t, p.addr("web"), "GET /noupgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if statusOf(out) != 403 {
		t.Errorf("refused upgrade answered %d, want 403:\n%.300s", statusOf(out), out)
	}
}
