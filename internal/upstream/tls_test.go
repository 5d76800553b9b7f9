package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
)

func TestBuildTLSNil(t *testing.T) {
	cfg, err := BuildTLS(nil)
	if cfg != nil || err != nil {
		t.Fatalf("BuildTLS(nil) = %v, %v", cfg, err)
	}
}

func TestBuildTLSErrors(t *testing.T) {
	tests := []struct {
		name string
		in   model.UpstreamTLS
	}{
		{name: "bad trusted ca", in: model.UpstreamTLS{TrustedCAPEM: []byte("not pem")}},
		{name: "bad client cert", in: model.UpstreamTLS{ClientCert: &model.Certificate{CertChainPEM: []byte("x"), PrivateKeyPEM: []byte("y")}}},
		{name: "bad san regex", in: model.UpstreamTLS{MatchSANs: []model.StringMatcher{{Kind: model.StringRegex, Value: "("}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BuildTLS(&tc.in); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestPoolTLS(t *testing.T) {
	ca := newPKI(t, "test ca")
	other := newPKI(t, "other ca")
	_, _, serverCert := ca.leaf(t, "server", x509.ExtKeyUsageServerAuth, "upstream.test", "*.wild.test")
	clientPEM, clientKey, _ := ca.leaf(t, "nuncio-client", x509.ExtKeyUsageClientAuth)

	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)

	tests := []struct {
		name       string
		tls        model.UpstreamTLS
		clientAuth bool // the server requires a client certificate from ca
		wantErr    bool
	}{
		{name: "trusted ca", tls: model.UpstreamTLS{TrustedCAPEM: ca.certPEM}},
		{name: "wrong ca", tls: model.UpstreamTLS{TrustedCAPEM: other.certPEM}, wantErr: true},
		{name: "no validation context", tls: model.UpstreamTLS{}},
		{
			name: "san exact match",
			tls:  model.UpstreamTLS{TrustedCAPEM: ca.certPEM, MatchSANs: []model.StringMatcher{{Kind: model.StringExact, Value: "upstream.test"}}},
		},
		{
			name: "san wildcard",
			tls:  model.UpstreamTLS{TrustedCAPEM: ca.certPEM, MatchSANs: []model.StringMatcher{{Kind: model.StringExact, Value: "a.wild.test"}}},
		},
		{
			name: "san suffix ignore case",
			tls:  model.UpstreamTLS{MatchSANs: []model.StringMatcher{{Kind: model.StringSuffix, Value: ".TEST", IgnoreCase: true}}},
		},
		{
			name: "san ip",
			tls:  model.UpstreamTLS{MatchSANs: []model.StringMatcher{{Kind: model.StringExact, Value: "127.0.0.1"}}},
		},
		{
			name:    "san mismatch",
			tls:     model.UpstreamTLS{TrustedCAPEM: ca.certPEM, MatchSANs: []model.StringMatcher{{Kind: model.StringExact, Value: "other.test"}}},
			wantErr: true,
		},
		{
			name:    "san mismatch without ca",
			tls:     model.UpstreamTLS{MatchSANs: []model.StringMatcher{{Kind: model.StringRegex, Value: "upstream"}}},
			wantErr: true,
		},
		{
			name: "san regex whole value",
			tls:  model.UpstreamTLS{MatchSANs: []model.StringMatcher{{Kind: model.StringRegex, Value: "up.*\\.test"}}},
		},
		{
			name:       "client certificate",
			tls:        model.UpstreamTLS{TrustedCAPEM: ca.certPEM, ClientCert: &model.Certificate{CertChainPEM: clientPEM, PrivateKeyPEM: clientKey}},
			clientAuth: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			scfg := &tls.Config{Certificates: []tls.Certificate{serverCert}}
			if tc.clientAuth {
				scfg.ClientAuth = tls.RequireAndVerifyClientCert
				scfg.ClientCAs = clientCAs
			}
			srv := newLineServer(t, scfg)
			tc.tls.SNI = "upstream.test"
			cfg, err := BuildTLS(&tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			p := NewPool(srv.addr(), PoolOptions{TLS: cfg})
			defer p.Close()
			c, err := p.Get(context.Background())
			if tc.wantErr {
				if !errors.Is(err, ErrConnectFailed) {
					t.Fatalf("err = %v, want ErrConnectFailed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ping(t, c)
			p.Put(c, true)
			// The idle TLS connection is reused: the liveness check must not mistake
			// pending post-handshake messages for a closed connection.
			c2, err := p.Get(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if c2 != c {
				t.Error("TLS connection not reused")
			}
			ping(t, c2)
			p.Put(c2, true)

			srv.mu.Lock()
			peer := srv.peers[0]
			srv.mu.Unlock()
			if peer.ServerName != "upstream.test" {
				t.Errorf("SNI = %q, want upstream.test", peer.ServerName)
			}
			if tc.clientAuth {
				if len(peer.PeerCertificates) == 0 || peer.PeerCertificates[0].Subject.CommonName != "nuncio-client" {
					t.Error("server did not receive the client certificate")
				}
			}
		})
	}
}

func TestBuildTLSDefaults(t *testing.T) {
	cfg, err := BuildTLS(&model.UpstreamTLS{ALPN: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	if cfg.ServerName != "" {
		t.Errorf("ServerName = %q, want none without SNI", cfg.ServerName)
	}
	if got := alpnFor(cfg, HTTP1).NextProtos; len(got) != 1 || got[0] != "http/1.1" {
		t.Errorf("HTTP/1.1 pool ALPN = %q", got)
	}
	if got := alpnFor(cfg, HTTP2).NextProtos; len(got) != 2 || got[0] != "h2" {
		t.Errorf("HTTP/2 pool ALPN = %q", got)
	}
}

func TestPoolTLSSkipsServerClosedConnection(t *testing.T) {
	checkGoroutines(t)
	ca := newPKI(t, "test ca")
	_, _, serverCert := ca.leaf(t, "server", x509.ExtKeyUsageServerAuth, "upstream.test")
	srv := newLineServer(t, &tls.Config{Certificates: []tls.Certificate{serverCert}})
	srv.closeAfterReply.Store(true)
	cfg, err := BuildTLS(&model.UpstreamTLS{TrustedCAPEM: ca.certPEM})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(srv.addr(), PoolOptions{TLS: cfg})
	defer p.Close()
	c, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ping(t, c)
	p.Put(c, true)
	// The server's close_notify alert and FIN are pending on the idle connection.
	waitFor(t, "server close", func() bool { return srv.closed.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	c2, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c {
		t.Fatal("a TLS connection closed by the server was handed out")
	}
	ping(t, c2)
	p.Put(c2, false)
}
