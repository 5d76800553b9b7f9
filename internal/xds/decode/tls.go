package decode

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&tlsv3.DownstreamTlsContext{}, "common_tls_context", "require_client_certificate")
	_ = allow(&tlsv3.UpstreamTlsContext{}, "common_tls_context", "sni")
	_ = allow(&tlsv3.CommonTlsContext{}, "tls_params", "tls_certificates", "validation_context", "alpn_protocols",
		"tls_certificate_sds_secret_configs", "validation_context_sds_secret_config")
	_ = allow(&tlsv3.TlsParameters{}, "tls_minimum_protocol_version", "tls_maximum_protocol_version", "cipher_suites")
	_ = allow(&tlsv3.TlsCertificate{}, "certificate_chain", "private_key")
	_ = allow(&tlsv3.CertificateValidationContext{}, "trusted_ca", "system_root_certs",
		"match_typed_subject_alt_names", "match_subject_alt_names")
	_ = allow(&tlsv3.CertificateValidationContext_SystemRootCerts{})
	_ = allow(&tlsv3.SubjectAltNameMatcher{}, "san_type", "matcher")
)

func downstreamTLS(p path, c *tlsv3.DownstreamTlsContext) (*model.DownstreamTLS, error) {
	cp := p.field("common_tls_context")
	ctx := c.GetCommonTlsContext()
	out := &model.DownstreamTLS{ALPN: ctx.GetAlpnProtocols()}
	var err error
	if out.Params, err = tlsParams(cp.field("tls_params"), ctx.GetTlsParams(), tls.VersionTLS13); err != nil {
		return nil, err
	}
	if err := downstreamSecrets(cp, ctx, out); err != nil {
		return nil, err
	}
	if len(ctx.GetTlsCertificates()) == 0 && len(out.CertificateSecrets) == 0 {
		return nil, cp.field("tls_certificates").errorf("a server certificate required")
	}
	for i, tc := range ctx.GetTlsCertificates() {
		cert, err := certificate(cp.field("tls_certificates").index(i), tc)
		if err != nil {
			return nil, err
		}
		out.Certificates = append(out.Certificates, cert)
	}
	if vc := ctx.GetValidationContext(); vc != nil {
		vp := cp.field("validation_context")
		if len(vc.GetMatchTypedSubjectAltNames()) > 0 || len(vc.GetMatchSubjectAltNames()) > 0 {
			return nil, vp.errorf("subject alt name matching of client certificates not supported yet")
		}
		if vc.GetSystemRootCerts() != nil {
			return nil, vp.field("system_root_certs").errorf("not supported for client certificates")
		}
		if out.ClientCAPEM, err = trustedCA(vp, vc); err != nil {
			return nil, err
		}
	}
	out.RequireClientCert = c.GetRequireClientCertificate().GetValue()
	if out.RequireClientCert && out.ClientCAPEM == nil && out.ValidationSecret == nil {
		// Without trust anchors any self-made certificate would pass; Envoy needs them too.
		return nil, p.field("require_client_certificate").errorf("requires common_tls_context.validation_context.trusted_ca")
	}
	return out, nil
}

func upstreamTLS(p path, c *tlsv3.UpstreamTlsContext) (*model.UpstreamTLS, error) {
	cp := p.field("common_tls_context")
	ctx := c.GetCommonTlsContext()
	out := &model.UpstreamTLS{SNI: c.GetSni(), ALPN: ctx.GetAlpnProtocols()}
	if out.SNI != "" && !validHostname(out.SNI) {
		return nil, p.field("sni").errorf("%q is not a host name", out.SNI)
	}
	var err error
	// Envoy's clients stop at TLS 1.2 unless told otherwise.
	if out.Params, err = tlsParams(cp.field("tls_params"), ctx.GetTlsParams(), tls.VersionTLS12); err != nil {
		return nil, err
	}
	switch n := len(ctx.GetTlsCertificates()); {
	case n > 1:
		return nil, cp.field("tls_certificates").errorf("at most one client certificate")
	case n == 1:
		cert, err := certificate(cp.field("tls_certificates").index(0), ctx.GetTlsCertificates()[0])
		if err != nil {
			return nil, err
		}
		out.ClientCert = &cert
	}
	if err := upstreamSecrets(cp, ctx, out); err != nil {
		return nil, err
	}
	if vc := ctx.GetValidationContext(); vc != nil {
		vp := cp.field("validation_context")
		v, err := validationContext(vp, vc)
		if err != nil {
			return nil, err
		}
		out.TrustedCAPEM, out.SystemRoots = v.TrustedCAPEM, v.SystemRoots
		out.MatchSANs, out.MatchTypedSANs = v.MatchSANs, v.MatchTypedSANs
		if (len(out.MatchSANs) > 0 || len(out.MatchTypedSANs) > 0) && out.TrustedCAPEM == nil && !out.SystemRoots {
			return nil, vp.field("trusted_ca").errorf("required (or system_root_certs) when matching subject alt names")
		}
	}
	return out, nil
}

var sanTypes = map[tlsv3.SubjectAltNameMatcher_SanType]model.SANType{
	tlsv3.SubjectAltNameMatcher_DNS:        model.SANDNS,
	tlsv3.SubjectAltNameMatcher_URI:        model.SANURI,
	tlsv3.SubjectAltNameMatcher_EMAIL:      model.SANEmail,
	tlsv3.SubjectAltNameMatcher_IP_ADDRESS: model.SANIPAddress,
}

func trustedCA(p path, vc *tlsv3.CertificateValidationContext) ([]byte, error) {
	if vc.GetTrustedCa() == nil {
		return nil, nil
	}
	tp := p.field("trusted_ca")
	pem, _, err := dataSource(tp, vc.GetTrustedCa())
	if err != nil {
		return nil, err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		return nil, tp.errorf("no PEM certificates found")
	}
	return pem, nil
}

func certificate(p path, tc *tlsv3.TlsCertificate) (model.Certificate, error) {
	var out model.Certificate
	var err error
	if tc.GetCertificateChain() == nil {
		return out, p.field("certificate_chain").errorf("required")
	}
	if tc.GetPrivateKey() == nil {
		return out, p.field("private_key").errorf("required")
	}
	if out.CertChainPEM, out.CertFile, err = dataSource(p.field("certificate_chain"), tc.GetCertificateChain()); err != nil {
		return out, err
	}
	if out.PrivateKeyPEM, out.KeyFile, err = dataSource(p.field("private_key"), tc.GetPrivateKey()); err != nil {
		return out, err
	}
	// Parse now so that a bad or mismatched pair fails the config, not the first handshake.
	if _, err := tls.X509KeyPair(out.CertChainPEM, out.PrivateKeyPEM); err != nil {
		return out, p.errorf("%v", err)
	}
	return out, nil
}

var tlsVersions = map[tlsv3.TlsParameters_TlsProtocol]uint16{
	tlsv3.TlsParameters_TLSv1_0: tls.VersionTLS10,
	tlsv3.TlsParameters_TLSv1_1: tls.VersionTLS11,
	tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
	tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
}

// tlsParams applies Envoy's defaults: TLS 1.2 minimum, maxDefault maximum.
func tlsParams(p path, tp *tlsv3.TlsParameters, maxDefault uint16) (model.TLSParams, error) {
	out := model.TLSParams{MinVersion: tls.VersionTLS12, MaxVersion: maxDefault}
	if v := tp.GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		out.MinVersion = tlsVersions[v]
	}
	if v := tp.GetTlsMaximumProtocolVersion(); v != tlsv3.TlsParameters_TLS_AUTO {
		out.MaxVersion = tlsVersions[v]
	}
	if out.MinVersion == 0 || out.MaxVersion == 0 {
		return out, p.errorf("unknown protocol version")
	}
	if out.MaxVersion < out.MinVersion {
		return out, p.field("tls_maximum_protocol_version").errorf("below tls_minimum_protocol_version")
	}
	for i, name := range tp.GetCipherSuites() {
		ids, err := cipherSuites(name)
		if err != nil {
			return out, p.field("cipher_suites").index(i).errorf("%v", err)
		}
		out.CipherSuites = append(out.CipherSuites, ids...)
	}
	return out, nil
}

// opensslCiphers maps the OpenSSL/BoringSSL names Envoy configs use to Go's suite IDs. TLS 1.3
// suites are not configurable, in Envoy as in Go.
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// cipherSuites resolves one cipher_suites entry: an OpenSSL name, an IANA name, or a
// BoringSSL equal-preference group "[A|B]" (Go orders suites itself, so a group is a list).
func cipherSuites(name string) ([]uint16, error) {
	names := []string{name}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		names = strings.Split(name[1:len(name)-1], "|")
	}
	var out []uint16
	for _, n := range names {
		if id, ok := opensslCiphers[n]; ok {
			out = append(out, id)
			continue
		}
		id, ok := ianaCipher(n)
		if !ok {
			return nil, fmt.Errorf("unknown cipher suite %s", n)
		}
		out = append(out, id)
	}
	return out, nil
}

func ianaCipher(name string) (uint16, bool) {
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			return s.ID, true
		}
	}
	return 0, false
}

var _ = allow(&matcherv3.StringMatcher{}, "exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case")
