package wasm

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// connProps serves the attributes abi.Attributes leaves to the adapter: the downstream
// connection's TLS (connection.*), the upstream host and the response details, under Envoy's
// attribute names. It is one pointer, so making it an abi.Properties allocates nothing.
type connProps struct{ s *httpfilter.Stream }

// AppendProperty implements abi.Properties.
func (p connProps) AppendProperty(dst []byte, path string) ([]byte, bool) {
	s := p.s
	top, rest, _ := strings.Cut(path, "\x00")
	switch top {
	case "connection":
		return p.connection(dst, rest)
	case "upstream":
		if rest == "address" && s.Info.UpstreamHost != "" {
			return append(dst, s.Info.UpstreamHost...), true
		}
	case "response":
		if rest == "code_details" && s.Info.ResponseDetails != "" {
			return append(dst, s.Info.ResponseDetails...), true
		}
	}
	return dst, false
}

var tlsVersions = map[uint16]string{
	tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1",
	tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3",
}

func (p connProps) connection(dst []byte, attr string) ([]byte, bool) {
	t := p.s.Downstream.TLS
	if attr == "mtls" {
		mtls := t != nil && len(t.PeerCertificates) > 0
		if mtls {
			return append(dst, 1), true
		}
		return append(dst, 0), true
	}
	if t == nil {
		return dst, false
	}
	switch attr {
	case "requested_server_name":
		return append(dst, t.ServerName...), true
	case "tls_version":
		v, ok := tlsVersions[t.Version]
		return append(dst, v...), ok
	}
	if len(t.PeerCertificates) == 0 {
		return dst, false
	}
	peer := t.PeerCertificates[0]
	switch attr {
	case "subject_peer_certificate":
		return append(dst, peer.Subject.String()...), true
	case "sha256_peer_certificate_digest":
		sum := sha256.Sum256(peer.Raw)
		return hex.AppendEncode(dst, sum[:]), true
	case "dns_san_peer_certificate":
		if len(peer.DNSNames) > 0 {
			return append(dst, peer.DNSNames[0]...), true
		}
	case "uri_san_peer_certificate":
		if len(peer.URIs) > 0 {
			return append(dst, peer.URIs[0].String()...), true
		}
	}
	return dst, false
}
