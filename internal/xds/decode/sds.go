package decode

import (
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&tlsv3.SdsSecretConfig{}, "name", "sds_config")
	_ = allow(&tlsv3.Secret{}, "name", "tls_certificate", "validation_context")
)

// Secret decodes an SDS secret: a certificate with its private key, or a validation context.
// The certificate pair is parsed now, so that a bad one is refused by the client (NACK)
// instead of failing every handshake.
func Secret(s *tlsv3.Secret) (*model.Secret, error) {
	if err := strict("", s); err != nil {
		return nil, err
	}
	out := &model.Secret{Name: s.GetName(), Source: s}
	if out.Name == "" {
		return nil, path("name").errorf("required")
	}
	switch t := s.GetType().(type) {
	case *tlsv3.Secret_TlsCertificate:
		cert, err := certificate("tls_certificate", t.TlsCertificate)
		if err != nil {
			return nil, err
		}
		out.Certificate = &cert
	case *tlsv3.Secret_ValidationContext:
		vc, err := validationContext("validation_context", t.ValidationContext)
		if err != nil {
			return nil, err
		}
		out.Validation = vc
	default:
		return nil, path("").errorf("one of tls_certificate, validation_context required")
	}
	return out, nil
}

// validationContext decodes a validation context delivered as a secret. Whether it suits its
// user (a listener verifies client certificates against trusted_ca only) is checked when the
// secret is resolved.
func validationContext(p path, vc *tlsv3.CertificateValidationContext) (*model.ValidationContext, error) {
	out := &model.ValidationContext{SystemRoots: vc.GetSystemRootCerts() != nil}
	var err error
	if out.TrustedCAPEM, err = trustedCA(p, vc); err != nil {
		return nil, err
	}
	if out.SystemRoots && out.TrustedCAPEM != nil {
		return nil, p.field("system_root_certs").errorf("cannot be combined with trusted_ca")
	}
	for i, m := range vc.GetMatchSubjectAltNames() {
		sm, err := stringMatcher(p.field("match_subject_alt_names").index(i), m)
		if err != nil {
			return nil, err
		}
		out.MatchSANs = append(out.MatchSANs, sm)
	}
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		mp := p.field("match_typed_subject_alt_names").index(i)
		t, ok := sanTypes[m.GetSanType()]
		if !ok {
			return nil, mp.field("san_type").errorf("%s not supported", m.GetSanType())
		}
		sm, err := stringMatcher(mp.field("matcher"), m.GetMatcher())
		if err != nil {
			return nil, err
		}
		out.MatchTypedSANs = append(out.MatchTypedSANs, model.SANMatcher{Type: t, Matcher: sm})
	}
	return out, nil
}

// secretRef decodes a reference to an SDS secret. Secrets without sds_config would be static
// bootstrap secrets, which Nuncio does not have: certificates given inline do the same.
func secretRef(p path, c *tlsv3.SdsSecretConfig) (model.SecretRef, error) {
	out := model.SecretRef{Name: c.GetName()}
	if out.Name == "" {
		return out, p.field("name").errorf("required")
	}
	if c.GetSdsConfig() == nil {
		return out, p.field("sds_config").errorf("required (static secrets are not supported; give the certificate inline)")
	}
	var err error
	out.ConfigSource, err = adsSource(p.field("sds_config"), c.GetSdsConfig())
	return out, err
}

// downstreamSecrets reads a listener TLS context's SDS references.
func downstreamSecrets(p path, ctx *tlsv3.CommonTlsContext, out *model.DownstreamTLS) error {
	for i, c := range ctx.GetTlsCertificateSdsSecretConfigs() {
		ref, err := secretRef(p.field("tls_certificate_sds_secret_configs").index(i), c)
		if err != nil {
			return err
		}
		out.CertificateSecrets = append(out.CertificateSecrets, ref)
	}
	var err error
	out.ValidationSecret, err = validationSecret(p, ctx)
	return err
}

// upstreamSecrets reads a cluster TLS context's SDS references.
func upstreamSecrets(p path, ctx *tlsv3.CommonTlsContext, out *model.UpstreamTLS) error {
	switch cs := ctx.GetTlsCertificateSdsSecretConfigs(); {
	case len(cs) > 1:
		return p.field("tls_certificate_sds_secret_configs").errorf("at most one client certificate")
	case len(cs) == 1 && out.ClientCert != nil:
		return p.field("tls_certificate_sds_secret_configs").errorf("cannot be combined with tls_certificates")
	case len(cs) == 1:
		ref, err := secretRef(p.field("tls_certificate_sds_secret_configs").index(0), cs[0])
		if err != nil {
			return err
		}
		out.ClientCertSecret = &ref
	}
	var err error
	out.ValidationSecret, err = validationSecret(p, ctx)
	return err
}

// validationSecret reads a TLS context's validation_context_sds_secret_config, if it has one.
func validationSecret(p path, ctx *tlsv3.CommonTlsContext) (*model.SecretRef, error) {
	c := ctx.GetValidationContextSdsSecretConfig()
	if c == nil {
		return nil, nil
	}
	ref, err := secretRef(p.field("validation_context_sds_secret_config"), c)
	if err != nil {
		return nil, err
	}
	return &ref, nil
}
