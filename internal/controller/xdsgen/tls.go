package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const tlsSocketName = "envoy.transport_sockets.tls"

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"1.0": tlsv3.TlsParameters_TLSv1_0, "1.1": tlsv3.TlsParameters_TLSv1_1,
	"1.2": tlsv3.TlsParameters_TLSv1_2, "1.3": tlsv3.TlsParameters_TLSv1_3,
}

func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ads()}
}

func file(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

func inlineBytes(v string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(v)}}
}

// downstreamTLS is a filter chain's TLS termination.
func downstreamTLS(t *ir.TLS) *corev3.TransportSocket {
	common := &tlsv3.CommonTlsContext{AlpnProtocols: t.ALPN}
	if t.Secret != "" {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sds(t.Secret)}
	} else {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: file(t.CertFile), PrivateKey: file(t.KeyFile)}}
	}
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: common}
	if t.ClientCA != "" {
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
			ValidationContextSdsSecretConfig: sds(t.ClientCA),
		}
		ctx.RequireClientCertificate = wrapperspb.Bool(t.RequireClientCert)
	}
	if len(t.Ciphers) > 0 || t.MinVersion != "" {
		common.TlsParams = &tlsv3.TlsParameters{CipherSuites: t.Ciphers, TlsMinimumProtocolVersion: tlsVersions[t.MinVersion]}
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(ctx)}}
}

// upstreamTLS is a cluster's TLS to its endpoints.
func upstreamTLS(c *ir.Cluster) *corev3.TransportSocket {
	t := c.TLS
	common := &tlsv3.CommonTlsContext{}
	// Envoy verifies nothing without a validation context, unlike Go's TLS client.
	if t.Verify {
		vc := &tlsv3.CertificateValidationContext{}
		switch {
		case t.CA != "":
			vc.TrustedCa = inlineBytes(t.CA)
		case t.CAFile != "":
			vc.TrustedCa = file(t.CAFile)
		default:
			vc.SystemRootCerts = &tlsv3.CertificateValidationContext_SystemRootCerts{}
		}
		if t.VerifyName != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.VerifyName}},
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	switch {
	case t.ClientSecret != "":
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sds(t.ClientSecret)}
	case t.CertFile != "":
		common.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: file(t.CertFile), PrivateKey: file(t.KeyFile)}}
	}
	if len(t.Ciphers) > 0 || t.MinVersion != "" {
		common.TlsParams = &tlsv3.TlsParameters{
			CipherSuites:              t.Ciphers,
			TlsMinimumProtocolVersion: tlsVersions[t.MinVersion],
			TlsMaximumProtocolVersion: tlsVersions[t.MaxVersion],
		}
	}
	// A backend serving both versions picks from ALPN. With AUTO the version depends on the
	// client, so ALPN is left to the data plane, which offers each connection pool's own.
	if c.Protocol == ir.ProtocolHTTP2 {
		common.AlpnProtocols = []string{"h2"}
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{
		Sni: t.SNI, CommonTlsContext: common,
	})}}
}

// secret is an SDS secret: a certificate and key, or a CA bundle.
func secret(s *ir.Secret) *tlsv3.Secret {
	if s.Cert != "" {
		return &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inlineBytes(s.Cert), PrivateKey: inlineBytes(s.Key),
		}}}
	}
	return &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inlineBytes(s.CA),
	}}}
}
