package listener

import (
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// tlsFixture is a listener with TLS chains selected by SNI and ALPN and a plaintext chain.
type tlsFixture struct {
	pki  *certs.Cert
	m    *Manager
	addr string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	pki := certs.CA(t, "test CA")
	serverTLS := func(names ...string) *model.DownstreamTLS {
		return &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, names[0], names, false)}}
	}
	h2 := serverTLS("alpn.example.com")
	h2.ALPN = []string{"h2"}
	multi := &model.DownstreamTLS{Certificates: []model.Certificate{
		issue(t, pki, "a", []string{"a.multi.test"}, false),
		issue(t, pki, "b", []string{"b.multi.test"}, false),
	}}
	l := &model.Listener{
		Name:    "tls",
		Address: loopback(0),
		FilterChains: []*model.FilterChain{
			{Name: "exact", Match: model.FilterChainMatch{ServerNames: []string{"www.example.com"}}, TLS: serverTLS("www.example.com"), HCM: &model.HTTPConnectionManager{}},
			{Name: "wild", Match: model.FilterChainMatch{ServerNames: []string{"*.example.com"}}, TLS: serverTLS("*.example.com")},
			{Name: "wild-deep", Match: model.FilterChainMatch{ServerNames: []string{"*.api.example.com"}}, TLS: serverTLS("*.api.example.com")},
			{Name: "h2only", Match: model.FilterChainMatch{ServerNames: []string{"alpn.example.com"}, ApplicationProtocols: []string{"h2"}}, TLS: h2},
			{Name: "h1", Match: model.FilterChainMatch{ServerNames: []string{"alpn.example.com"}}, TLS: serverTLS("alpn.example.com"), HCM: &model.HTTPConnectionManager{Codec: model.CodecHTTP1}},
			{Name: "multi", Match: model.FilterChainMatch{ServerNames: []string{"a.multi.test", "b.multi.test"}}, TLS: multi},
			{Name: "only-tls", Match: model.FilterChainMatch{ServerNames: []string{"strict.test"}, TransportProtocol: TransportTLS}, TLS: serverTLS("strict.test")},
			{Name: "tls-any", Match: model.FilterChainMatch{TransportProtocol: TransportTLS}, TLS: serverTLS("default.test")},
			{Name: "plain", Match: model.FilterChainMatch{TransportProtocol: TransportRaw}},
		},
	}
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	return &tlsFixture{pki: pki, m: m, addr: addrOf(t, m, "tls")}
}

func TestFilterChainSelectionLoopback(t *testing.T) {
	leak.Check(t)
	f := newTLSFixture(t)
	tests := []struct {
		name      string
		plaintext bool
		sni       string
		alpn      []string
		verifyAs  string // name the certificate must cover; defaults to sni
		want      string // chain; "" means the connection is refused
		wantALPN  string
	}{
		{name: "plaintext", plaintext: true, want: "plain"},
		{name: "exact SNI with HTTP ALPN default", sni: "www.example.com", alpn: []string{"h2", "http/1.1"}, want: "exact", wantALPN: "h2"},
		{name: "exact SNI without ALPN", sni: "www.example.com", want: "exact"},
		{name: "wildcard SNI", sni: "shop.example.com", want: "wild"},
		{name: "longest wildcard", sni: "v1.api.example.com", want: "wild-deep"},
		{name: "no SNI", verifyAs: "default.test", want: "tls-any"},
		{name: "unknown SNI", sni: "nobody.test", verifyAs: "default.test", want: "tls-any"},
		{name: "ALPN h2", sni: "alpn.example.com", alpn: []string{"h2", "http/1.1"}, want: "h2only", wantALPN: "h2"},
		{name: "ALPN http/1.1", sni: "alpn.example.com", alpn: []string{"http/1.1"}, want: "h1", wantALPN: "http/1.1"},
		{name: "certificate by SNI within a chain (first)", sni: "a.multi.test", want: "multi"},
		{name: "certificate by SNI within a chain (second)", sni: "b.multi.test", want: "multi"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c *client
			if tc.plaintext {
				c = dialPlain(t, f.addr)
				c.send(t, "who")
			} else {
				verify := tc.verifyAs
				if verify == "" {
					verify = tc.sni
				}
				cfg := &tls.Config{ServerName: tc.sni, NextProtos: tc.alpn, RootCAs: f.pki.Pool()}
				if verify != tc.sni {
					// The fallback chain's certificate cannot cover the name asked for (or
					// no name: crypto/tls then sends no SNI); verify it by hand below.
					cfg.InsecureSkipVerify = true
				}
				var err error
				c, err = dialTLS(t, f.addr, cfg)
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				leaf := c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
				if err := leaf.VerifyHostname(verify); err != nil {
					t.Errorf("served certificate: %v", err)
				}
			}
			got, fields := c.greeting()
			if got != tc.want {
				t.Fatalf("chain = %q (%q), want %q", got, fields, tc.want)
			}
			wantTransport := TransportTLS
			if tc.plaintext {
				wantTransport = TransportRaw
			}
			if fields[1] != wantTransport || fields[2] != tc.sni || fields[3] != tc.wantALPN {
				t.Errorf("info = %q, want transport %q sni %q alpn %q", fields, wantTransport, tc.sni, tc.wantALPN)
			}
		})
	}
}

func TestNoChainMatchCloses(t *testing.T) {
	leak.Check(t)
	pki := certs.CA(t, "ca")
	l := &model.Listener{
		Name:    "strict",
		Address: loopback(0),
		FilterChains: []*model.FilterChain{
			{Name: "only", Match: model.FilterChainMatch{ServerNames: []string{"only.test"}}, TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, "only", []string{"only.test"}, false)}}},
		},
	}
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "strict")

	t.Run("plaintext", func(t *testing.T) {
		c := dialPlain(t, addr)
		c.send(t, "who")
		c.expectClosed(t)
	})
	t.Run("other SNI", func(t *testing.T) {
		if _, err := dialTLS(t, addr, &tls.Config{ServerName: "other.test", RootCAs: pki.Pool()}); err == nil {
			t.Fatal("handshake succeeded, want the connection closed")
		}
	})
	t.Run("matching SNI", func(t *testing.T) {
		c, err := dialTLS(t, addr, &tls.Config{ServerName: "only.test", RootCAs: pki.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.greeting(); got != "only" {
			t.Fatalf("chain = %q", got)
		}
	})
	wait.For(t, "no-match counter", func() bool {
		s, _ := statusOf(m, "strict", false)
		return s.NoChainMatch == 2
	})
}

func TestDefaultFilterChain(t *testing.T) {
	leak.Check(t)
	pki := certs.CA(t, "ca")
	l := &model.Listener{
		Name:    "dflt",
		Address: loopback(0),
		FilterChains: []*model.FilterChain{
			{Name: "named", Match: model.FilterChainMatch{ServerNames: []string{"named.test"}}, TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, "n", []string{"named.test"}, false)}}},
		},
		DefaultFilterChain: &model.FilterChain{Name: "fallback", TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, "d", []string{"fallback.test"}, false)}}},
	}
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	c, err := dialTLS(t, addrOf(t, m, "dflt"), &tls.Config{ServerName: "elsewhere.test", RootCAs: pki.Pool(), InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.greeting(); got != "fallback" {
		t.Fatalf("chain = %q, want fallback", got)
	}
}

func TestDestinationPortLoopback(t *testing.T) {
	leak.Check(t)
	port := freePort(t)
	l := &model.Listener{
		Name:    "ports",
		Address: loopback(port),
		FilterChains: []*model.FilterChain{
			fc("this-port", model.FilterChainMatch{DestinationPort: port}),
			fc("other-port", model.FilterChainMatch{DestinationPort: port + 1, TransportProtocol: TransportRaw}),
			fc("any-port", model.FilterChainMatch{TransportProtocol: TransportRaw}),
		},
	}
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	c := dialPlain(t, addrOf(t, m, "ports"))
	c.send(t, "who")
	if got, _ := c.greeting(); got != "this-port" {
		t.Fatalf("chain = %q, want this-port", got)
	}
}

func TestTLSMinVersion(t *testing.T) {
	leak.Check(t)
	f := newTLSFixture(t)
	_, err := dialTLS(t, f.addr, &tls.Config{ServerName: "www.example.com", RootCAs: f.pki.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := dialTLS(t, f.addr, &tls.Config{ServerName: "www.example.com", RootCAs: f.pki.Pool(), MinVersion: v, MaxVersion: v})
		if err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
		if st := c.Conn.(*tls.Conn).ConnectionState(); st.Version == tls.VersionTLS12 && !slices.Contains(cipherSuitesTLS12, st.CipherSuite) {
			t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
		}
	}
}

func TestTLSRejectsWeakCipherOnlyClient(t *testing.T) {
	leak.Check(t)
	f := newTLSFixture(t)
	_, err := dialTLS(t, f.addr, &tls.Config{
		ServerName: "www.example.com", RootCAs: f.pki.Pool(), MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
	})
	if err == nil {
		t.Fatal("CBC-only client negotiated")
	}
}

func TestTLSSessionResumption(t *testing.T) {
	leak.Check(t)
	f := newTLSFixture(t)
	cfg := &tls.Config{ServerName: "www.example.com", RootCAs: f.pki.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	for i := range 2 {
		c, err := dialTLS(t, f.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Reading the greeting also reads the TLS 1.3 session ticket.
		if got, _ := c.greeting(); got != "exact" {
			t.Fatalf("chain = %q", got)
		}
		if i == 1 && !c.Conn.(*tls.Conn).ConnectionState().DidResume {
			t.Error("second connection did not resume")
		}
		c.Close()
	}
}

func TestMutualTLS(t *testing.T) {
	leak.Check(t)
	serverPKI := certs.CA(t, "server CA")
	clientPKI := certs.CA(t, "client CA")
	strangerPKI := certs.CA(t, "stranger CA")
	chainFor := func(name string, require bool) *model.FilterChain {
		return &model.FilterChain{Name: name, Match: model.FilterChainMatch{ServerNames: []string{name + ".test"}}, TLS: &model.DownstreamTLS{
			Certificates:      []model.Certificate{issue(t, serverPKI, name, []string{name + ".test"}, false)},
			ClientCAPEM:       clientPKI.CertPEM,
			RequireClientCert: require,
		}}
	}
	l := &model.Listener{Name: "mtls", Address: loopback(0), FilterChains: []*model.FilterChain{chainFor("required", true), chainFor("optional", false)}}
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "mtls")
	good := tlsCert(t, issue(t, clientPKI, "client", nil, true))
	bad := tlsCert(t, issue(t, strangerPKI, "stranger", nil, true))

	tests := []struct {
		name      string
		sni       string
		cert      *tls.Certificate
		wantPeers string // "" means refused
	}{
		{name: "required, with certificate", sni: "required.test", cert: &good, wantPeers: "1"},
		{name: "required, without certificate", sni: "required.test"},
		{name: "required, untrusted certificate", sni: "required.test", cert: &bad},
		{name: "optional, without certificate", sni: "optional.test", wantPeers: "0"},
		{name: "optional, with certificate", sni: "optional.test", cert: &good, wantPeers: "1"},
		{name: "optional, untrusted certificate", sni: "optional.test", cert: &bad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{ServerName: tc.sni, RootCAs: serverPKI.Pool()}
			if tc.cert != nil {
				// crypto/tls clients withhold a certificate the server's CA list does not
				// cover; GetClientCertificate sends it regardless, as other clients may.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tc.cert, nil }
			}
			c, err := dialTLS(t, addr, cfg)
			var got string
			var fields []string
			if err == nil {
				// With TLS 1.3 the server's verdict on the client certificate arrives after
				// the client's handshake completes, so read before judging.
				got, fields = c.greeting()
			}
			if tc.wantPeers == "" {
				if got != "" {
					t.Fatalf("served by %q, want refused", got)
				}
				return
			}
			if got == "" {
				t.Fatalf("refused (%v)", err)
			}
			if fields[4] != tc.wantPeers {
				t.Errorf("peer certificates = %s, want %s", fields[4], tc.wantPeers)
			}
		})
	}
}

// passthroughHandler terminates TLS itself, as a TCP proxy's upstream would, proving that the
// ClientHello reached it intact.
type passthroughHandler struct{ cfg *tls.Config }

func (h *passthroughHandler) ServeConn(_ contextT, c net.Conn, info ConnInfo) {
	tc := tls.Server(c, h.cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return
	}
	tc.Write([]byte("backend|" + info.TransportProtocol + "|" + info.SNI + "||0\n"))
	buf := make([]byte, 1)
	tc.Read(buf)
}

func TestTLSPassthrough(t *testing.T) {
	leak.Check(t)
	pki := certs.CA(t, "ca")
	backend := tlsCert(t, issue(t, pki, "backend", []string{"pass.test"}, false))
	l := &model.Listener{
		Name:    "pt",
		Address: loopback(0),
		FilterChains: []*model.FilterChain{
			{Name: "terminate", Match: model.FilterChainMatch{ServerNames: []string{"term.test"}}, TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, "t", []string{"term.test"}, false)}}},
			{Name: "pass", Match: model.FilterChainMatch{ServerNames: []string{"pass.test"}, TransportProtocol: TransportTLS}},
		},
	}
	cc := mustCompile(t, l, handlerFor(map[string]ChainHandler{"pass": &passthroughHandler{cfg: &tls.Config{Certificates: []tls.Certificate{backend}}}}))
	m := newTestManager(t, Options{})
	if err := m.Apply([]*Compiled{cc}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "pt")
	for _, tc := range []struct{ sni, want string }{{"pass.test", "backend"}, {"term.test", "terminate"}} {
		c, err := dialTLS(t, addr, &tls.Config{ServerName: tc.sni, RootCAs: pki.Pool()})
		if err != nil {
			t.Fatalf("%s: %v", tc.sni, err)
		}
		if got, fields := c.greeting(); got != tc.want || (got == "backend" && fields[2] != "pass.test") {
			t.Errorf("%s: served by %q (%q), want %q", tc.sni, got, fields, tc.want)
		}
		c.Close()
	}
}

func TestInspectionTimeouts(t *testing.T) {
	leak.Check(t)
	pki := certs.CA(t, "ca")
	l := &model.Listener{Name: "slow", Address: loopback(0), FilterChains: []*model.FilterChain{
		{Name: "tls", TLS: &model.DownstreamTLS{Certificates: []model.Certificate{issue(t, pki, "s", []string{"slow.test"}, false)}}},
	}}
	m := newTestManager(t, Options{ListenerFiltersTimeout: 50 * time.Millisecond, HandshakeTimeout: 50 * time.Millisecond})
	if err := m.Apply([]*Compiled{mustCompile(t, l, nil)}); err != nil {
		t.Fatal(err)
	}
	addr := addrOf(t, m, "slow")
	t.Run("silent client", func(t *testing.T) {
		c := dialPlain(t, addr)
		c.expectClosed(t)
	})
	t.Run("stalled handshake", func(t *testing.T) {
		c := dialPlain(t, addr)
		if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
			t.Fatal(err)
		}
		c.expectClosed(t)
	})
	wait.For(t, "connections released", func() bool {
		s, _ := statusOf(m, "slow", false)
		return s.ActiveConnections == 0
	})
}
