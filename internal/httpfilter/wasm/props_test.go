package wasm

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

func TestConnectionProperties(t *testing.T) {
	peer := certs.CA(t, "test-ca").Issue(t, "client", x509.ExtKeyUsageClientAuth, "client.example")
	sum := sha256.Sum256(peer.Cert.Raw)
	mtls := &httpfilter.Stream{Downstream: httpfilter.Downstream{TLS: &tls.ConnectionState{
		Version: tls.VersionTLS13, ServerName: "api.example", PeerCertificates: []*x509.Certificate{peer.Cert},
	}}}
	mtls.Info.UpstreamHost = "127.0.0.1:8080"
	mtls.Info.ResponseDetails = "via_upstream"
	plain := &httpfilter.Stream{}
	for _, tc := range []struct {
		name   string
		s      *httpfilter.Stream
		path   string
		want   string
		wantOK bool
	}{
		{name: "mtls", s: mtls, path: "connection\x00mtls", want: "\x01", wantOK: true},
		{name: "plaintext is not mtls", s: plain, path: "connection\x00mtls", want: "\x00", wantOK: true},
		{name: "sni", s: mtls, path: "connection\x00requested_server_name", want: "api.example", wantOK: true},
		{name: "tls version", s: mtls, path: "connection\x00tls_version", want: "TLSv1.3", wantOK: true},
		{name: "peer subject", s: mtls, path: "connection\x00subject_peer_certificate", want: peer.Cert.Subject.String(), wantOK: true},
		{name: "peer digest", s: mtls, path: "connection\x00sha256_peer_certificate_digest", want: hex.EncodeToString(sum[:]), wantOK: true},
		{name: "peer dns san", s: mtls, path: "connection\x00dns_san_peer_certificate", want: "client.example", wantOK: true},
		{name: "no tls", s: plain, path: "connection\x00tls_version"},
		{name: "upstream address", s: mtls, path: "upstream\x00address", want: "127.0.0.1:8080", wantOK: true},
		{name: "response details", s: mtls, path: "response\x00code_details", want: "via_upstream", wantOK: true},
		{name: "unknown", s: mtls, path: "connection\x00nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := connProps{tc.s}.AppendProperty(nil, tc.path)
			if ok != tc.wantOK || string(got) != tc.want {
				t.Errorf("got %q %t, want %q %t", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
