package listener

import (
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

func fc(name string, m model.FilterChainMatch) *model.FilterChain {
	return &model.FilterChain{Name: name, Match: m}
}

// matchListener exercises every level of the match tree; chains are plaintext so that Compile
// needs no certificates.
func matchListener() *model.Listener {
	return &model.Listener{
		Name:    "match",
		Address: loopback(0),
		FilterChains: []*model.FilterChain{
			fc("port-8443", model.FilterChainMatch{DestinationPort: 8443}),
			fc("port-9443-exact", model.FilterChainMatch{DestinationPort: 9443, ServerNames: []string{"a.example.com"}}),
			fc("exact", model.FilterChainMatch{ServerNames: []string{"www.example.com", "Alt.Example.com"}}),
			fc("wild", model.FilterChainMatch{ServerNames: []string{"*.example.com"}}),
			fc("wild-deep", model.FilterChainMatch{ServerNames: []string{"*.api.example.com"}}),
			fc("tls-only-name", model.FilterChainMatch{ServerNames: []string{"tls.example.net"}, TransportProtocol: TransportTLS}),
			fc("alpn-h2", model.FilterChainMatch{ServerNames: []string{"alpn.example.com"}, ApplicationProtocols: []string{"h2"}}),
			fc("alpn-other", model.FilterChainMatch{ServerNames: []string{"alpn.example.com"}, ApplicationProtocols: []string{"http/1.1", "spdy/3"}}),
			fc("alpn-none", model.FilterChainMatch{ServerNames: []string{"alpn.example.com"}}),
			fc("any-tls", model.FilterChainMatch{TransportProtocol: TransportTLS}),
			fc("any-raw", model.FilterChainMatch{TransportProtocol: TransportRaw}),
		},
		DefaultFilterChain: fc("default", model.FilterChainMatch{}),
	}
}

func TestSelectChain(t *testing.T) {
	cc := mustCompile(t, matchListener(), nil)
	tests := []struct {
		name      string
		port      uint32
		sni       string
		transport string
		alpn      []string
		want      string
	}{
		{name: "exact SNI", port: 443, sni: "www.example.com", transport: TransportTLS, want: "exact"},
		{name: "exact SNI is case-insensitive", port: 443, sni: "WWW.Example.COM", transport: TransportTLS, want: "exact"},
		{name: "config names are lower-cased", port: 443, sni: "alt.example.com", transport: TransportTLS, want: "exact"},
		{name: "wildcard", port: 443, sni: "foo.example.com", transport: TransportTLS, want: "wild"},
		{name: "wildcard spans labels", port: 443, sni: "a.b.example.com", transport: TransportTLS, want: "wild"},
		{name: "longest wildcard wins", port: 443, sni: "v1.api.example.com", transport: TransportTLS, want: "wild-deep"},
		{name: "wildcard does not match its bare suffix", port: 443, sni: "example.com", transport: TransportTLS, want: "any-tls"},
		{name: "no SNI falls to chains without names", port: 443, transport: TransportTLS, want: "any-tls"},
		{name: "unknown SNI falls to chains without names", port: 443, sni: "other.org", transport: TransportTLS, want: "any-tls"},
		{name: "plaintext", port: 80, transport: TransportRaw, want: "any-raw"},
		{name: "name matched but transport did not: no backtracking, default", port: 443, sni: "tls.example.net", transport: TransportRaw, want: "default"},
		{name: "transport matched", port: 443, sni: "tls.example.net", transport: TransportTLS, want: "tls-only-name"},
		{name: "ALPN h2", port: 443, sni: "alpn.example.com", transport: TransportTLS, alpn: []string{"h2", "http/1.1"}, want: "alpn-h2"},
		{name: "ALPN in client order", port: 443, sni: "alpn.example.com", transport: TransportTLS, alpn: []string{"http/1.1", "h2"}, want: "alpn-other"},
		{name: "ALPN second listed protocol", port: 443, sni: "alpn.example.com", transport: TransportTLS, alpn: []string{"spdy/3"}, want: "alpn-other"},
		{name: "ALPN unknown falls to chain without protocols", port: 443, sni: "alpn.example.com", transport: TransportTLS, alpn: []string{"acme-tls/1"}, want: "alpn-none"},
		{name: "ALPN absent", port: 443, sni: "alpn.example.com", transport: TransportTLS, want: "alpn-none"},
		{name: "destination port first", port: 8443, sni: "www.example.com", transport: TransportTLS, want: "port-8443"},
		{name: "destination port prunes other chains", port: 9443, sni: "www.example.com", transport: TransportTLS, want: "default"},
		{name: "destination port then SNI", port: 9443, sni: "a.example.com", transport: TransportTLS, want: "port-9443-exact"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := cc.selectChain(tc.port, tc.sni, tc.transport, tc.alpn)
			got := ""
			if ch != nil {
				got = ch.model.Name
			}
			if got != tc.want {
				t.Errorf("selectChain(%d, %q, %q, %q) = %q, want %q", tc.port, tc.sni, tc.transport, tc.alpn, got, tc.want)
			}
		})
	}
}

func TestSelectChainNoDefault(t *testing.T) {
	l := matchListener()
	l.DefaultFilterChain = nil
	cc := mustCompile(t, l, nil)
	if ch := cc.selectChain(443, "tls.example.net", TransportRaw, nil); ch != nil {
		t.Errorf("got %q, want no chain", ch.model.Name)
	}
}

func TestSelectChainAllocs(t *testing.T) {
	cc := mustCompile(t, matchListener(), nil)
	alpn := []string{"http/1.1", "h2"}
	allocs := testing.AllocsPerRun(100, func() {
		cc.selectChain(443, "v1.api.example.com", TransportTLS, nil)
		cc.selectChain(443, "alpn.example.com", TransportTLS, alpn)
		cc.selectChain(80, "", TransportRaw, nil)
	})
	if allocs != 0 {
		t.Errorf("selectChain allocates %v times, want 0", allocs)
	}
}

func TestCompileErrors(t *testing.T) {
	pki := certs.CA(t, "ca")
	cert := issue(t, pki, "x", []string{"x.example.com"}, false)
	tests := []struct {
		name    string
		l       *model.Listener
		wantErr string
	}{
		{
			name:    "duplicate match",
			l:       &model.Listener{Name: "dup", Address: loopback(0), FilterChains: []*model.FilterChain{fc("a", model.FilterChainMatch{}), fc("b", model.FilterChainMatch{})}},
			wantErr: `listener "dup": filter chain "b" (#1): same match criteria as filter chain "a"`,
		},
		{
			name: "duplicate ALPN",
			l: &model.Listener{Name: "dup", Address: loopback(0), FilterChains: []*model.FilterChain{
				fc("a", model.FilterChainMatch{ApplicationProtocols: []string{"h2"}}),
				fc("b", model.FilterChainMatch{ApplicationProtocols: []string{"http/1.1", "h2"}}),
			}},
			wantErr: `same match criteria as filter chain "a"`,
		},
		{
			name:    "hostname address",
			l:       &model.Listener{Name: "h", Address: model.SocketAddress{Host: "localhost"}, FilterChains: []*model.FilterChain{fc("a", model.FilterChainMatch{})}},
			wantErr: `listener "h": address "localhost": not an IP literal`,
		},
		{
			name:    "no chains",
			l:       &model.Listener{Name: "empty", Address: loopback(0)},
			wantErr: `listener "empty": no filter chains`,
		},
		{
			name:    "bad wildcard",
			l:       &model.Listener{Name: "w", Address: loopback(0), FilterChains: []*model.FilterChain{fc("a", model.FilterChainMatch{ServerNames: []string{"a.*.com"}})}},
			wantErr: `only a leading "*." wildcard`,
		},
		{
			name:    "bad transport",
			l:       &model.Listener{Name: "t", Address: loopback(0), FilterChains: []*model.FilterChain{fc("a", model.FilterChainMatch{TransportProtocol: "quic"})}},
			wantErr: `transport protocol "quic"`,
		},
		{
			name: "TLS without certificates",
			l: &model.Listener{Name: "t", Address: loopback(0), FilterChains: []*model.FilterChain{
				{Name: "a", TLS: &model.DownstreamTLS{}},
			}},
			wantErr: `filter chain "a" (#0): tls: no certificates`,
		},
		{
			name: "bad key pair",
			l: &model.Listener{Name: "t", Address: loopback(0), DefaultFilterChain: &model.FilterChain{
				Name: "d", TLS: &model.DownstreamTLS{Certificates: []model.Certificate{{CertChainPEM: cert.CertChainPEM, PrivateKeyPEM: []byte("junk"), CertFile: "/etc/x.pem"}}},
			}},
			wantErr: `listener "t": default filter chain: tls: certificate #0 (/etc/x.pem)`,
		},
		{
			name: "bad client CA",
			l: &model.Listener{Name: "t", Address: loopback(0), FilterChains: []*model.FilterChain{
				{Name: "a", TLS: &model.DownstreamTLS{Certificates: []model.Certificate{cert}, ClientCAPEM: []byte("junk")}},
			}},
			wantErr: `tls: client CA: no PEM certificates`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.l, byName)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestCompileTLSDefaults(t *testing.T) {
	pki := certs.CA(t, "ca")
	cert := issue(t, pki, "x", []string{"x.example.com"}, false)
	tests := []struct {
		name     string
		tls      model.DownstreamTLS
		hcm      *model.HTTPConnectionManager
		wantALPN []string
	}{
		{name: "HTTP auto codec", hcm: &model.HTTPConnectionManager{}, wantALPN: []string{"h2", "http/1.1"}},
		{name: "HTTP/1 codec", hcm: &model.HTTPConnectionManager{Codec: model.CodecHTTP1}, wantALPN: []string{"http/1.1"}},
		{name: "configured ALPN wins", hcm: &model.HTTPConnectionManager{}, tls: model.DownstreamTLS{ALPN: []string{"http/1.1"}}, wantALPN: []string{"http/1.1"}},
		{name: "not HTTP", wantALPN: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.tls
			d.Certificates = []model.Certificate{cert}
			cc := mustCompile(t, &model.Listener{Name: "l", Address: loopback(0), FilterChains: []*model.FilterChain{{Name: "a", TLS: &d, HCM: tc.hcm}}}, nil)
			cfg := cc.all[0].tls
			if cfg.MinVersion != 0x0303 {
				t.Errorf("MinVersion = %#x, want TLS 1.2", cfg.MinVersion)
			}
			if strings.Join(cfg.NextProtos, ",") != strings.Join(tc.wantALPN, ",") {
				t.Errorf("NextProtos = %q, want %q", cfg.NextProtos, tc.wantALPN)
			}
			if cfg.SessionTicketsDisabled {
				t.Error("session tickets disabled")
			}
			for _, id := range cfg.CipherSuites {
				name := tlsCipherName(id)
				if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20")) {
					t.Errorf("cipher suite %s is not ECDHE with AEAD", name)
				}
			}
		})
	}
}
