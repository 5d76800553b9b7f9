package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// sessionCacheSize bounds TLS sessions kept for resumption per cluster config.
const sessionCacheSize = 64

// BuildTLS compiles a cluster's upstream TLS settings into a client config, following
// Envoy's semantics rather than Go's defaults:
//   - the server name is never checked against SNI (Envoy verifies names only through
//     match_subject_alt_names), so chain and SAN checks run in VerifyConnection and
//     InsecureSkipVerify only disables Go's built-in check;
//   - without TrustedCAPEM the chain is not verified (Envoy's behaviour without a
//     validation context), but MatchSANs still apply;
//   - with no SNI configured, none is sent.
//
// A nil m returns a nil config: plaintext.
func BuildTLS(m *model.UpstreamTLS) (*tls.Config, error) {
	if m == nil {
		return nil, nil
	}
	cfg := &tls.Config{
		ServerName:         m.SNI,
		NextProtos:         append([]string(nil), m.ALPN...),
		MinVersion:         m.Params.MinVersion,
		MaxVersion:         m.Params.MaxVersion,
		CipherSuites:       append([]uint16(nil), m.Params.CipherSuites...),
		InsecureSkipVerify: true, // replaced by VerifyConnection, see above
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize),
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	if m.AllowRenegotiation {
		cfg.Renegotiation = tls.RenegotiateFreelyAsClient
	}
	if m.ClientCert != nil {
		cert, err := tls.X509KeyPair(m.ClientCert.CertChainPEM, m.ClientCert.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("upstream tls: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	var roots *x509.CertPool
	if len(m.TrustedCAPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(m.TrustedCAPEM) {
			return nil, errors.New("upstream tls: trusted_ca: no PEM certificates")
		}
	}
	sans, err := compileSANs(m.MatchSANs)
	if err != nil {
		return nil, err
	}
	if roots != nil || len(sans) > 0 {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyPeer(cs, roots, sans)
		}
	}
	return cfg, nil
}

func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, sans []sanMatcher) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("upstream tls: server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if roots != nil {
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("upstream tls: %w", err)
		}
	}
	if len(sans) > 0 && !matchAnySAN(leaf, sans) {
		return errors.New("upstream tls: no subject alternative name matches")
	}
	return nil
}

// sanMatcher is a compiled model.StringMatcher for subject alternative names.
type sanMatcher struct {
	m  model.StringMatcher
	re *regexp.Regexp
}

func compileSANs(ms []model.StringMatcher) ([]sanMatcher, error) {
	out := make([]sanMatcher, 0, len(ms))
	for i, m := range ms {
		sm := sanMatcher{m: m}
		if m.Kind == model.StringRegex {
			// Envoy's safe_regex must match the whole value.
			re, err := regexp.Compile(`^(?:` + m.Value + `)$`)
			if err != nil {
				return nil, fmt.Errorf("upstream tls: match_subject_alt_names[%d]: %w", i, err)
			}
			sm.re = re
		}
		out = append(out, sm)
	}
	return out, nil
}

// matchAnySAN reports whether any DNS, URI, email or IP SAN of cert satisfies any matcher.
func matchAnySAN(cert *x509.Certificate, ms []sanMatcher) bool {
	for _, m := range ms {
		for _, d := range cert.DNSNames {
			if m.match(d) || (m.m.Kind == model.StringExact && dnsWildcardMatch(d, m.m.Value)) {
				return true
			}
		}
		for _, u := range cert.URIs {
			if m.match(u.String()) {
				return true
			}
		}
		for _, e := range cert.EmailAddresses {
			if m.match(e) {
				return true
			}
		}
		for _, ip := range cert.IPAddresses {
			if m.match(ip.String()) {
				return true
			}
		}
	}
	return false
}

func (m sanMatcher) match(s string) bool {
	v := m.m.Value
	if m.m.IgnoreCase && m.m.Kind != model.StringRegex {
		s, v = strings.ToLower(s), strings.ToLower(v)
	}
	switch m.m.Kind {
	case model.StringExact:
		return s == v
	case model.StringPrefix:
		return strings.HasPrefix(s, v)
	case model.StringSuffix:
		return strings.HasSuffix(s, v)
	case model.StringContains:
		return strings.Contains(s, v)
	case model.StringRegex:
		return m.re.MatchString(s)
	}
	return false
}

// dnsWildcardMatch lets a wildcard DNS SAN ("*.example.com") satisfy an exact matcher for a
// name one label below it, as Envoy does for DNS SANs.
func dnsWildcardMatch(san, name string) bool {
	rest, ok := strings.CutPrefix(san, "*.")
	if !ok || net.ParseIP(name) != nil {
		return false
	}
	_, parent, ok := strings.Cut(name, ".")
	return ok && strings.EqualFold(parent, rest)
}
