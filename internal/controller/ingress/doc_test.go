package ingress

import (
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

// TestAnnotationDoc keeps docs/ingress-nginx-annotations.md in sync with the table; -update
// regenerates it.
func TestAnnotationDoc(t *testing.T) {
	golden.Check(t, "../../../docs/ingress-nginx-annotations.md", AnnotationDoc())
}

// TestAnnotationCoverage checks the floor: at least 90 annotations translated (enforced
// or emitted for a data plane that enforces them), and that the ones it names are among them.
func TestAnnotationCoverage(t *testing.T) {
	n := 0
	for _, a := range Annotations {
		if a.Status == Implemented || a.Status == NotEnforced {
			n++
		}
	}
	if n < 90 {
		t.Errorf("%d annotations translated, want at least 90", n)
	}
	for _, k := range []string{"rewrite-target", "use-regex", "app-root", "ssl-redirect", "force-ssl-redirect",
		"permanent-redirect", "permanent-redirect-code", "temporal-redirect", "from-to-www-redirect", "backend-protocol",
		"upstream-vhost", "x-forwarded-prefix", "canary", "canary-by-header", "canary-by-header-value",
		"canary-by-header-pattern", "canary-by-cookie", "canary-weight", "canary-weight-total", "enable-cors",
		"cors-allow-origin", "cors-allow-methods", "cors-allow-headers", "cors-expose-headers", "cors-allow-credentials",
		"cors-max-age", "proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout", "proxy-next-upstream",
		"proxy-next-upstream-tries", "proxy-next-upstream-timeout", "proxy-body-size", "proxy-buffering", "limit-rps",
		"limit-rpm", "limit-connections", "limit-burst-multiplier", "limit-whitelist", "whitelist-source-range",
		"allowlist-source-range", "denylist-source-range", "load-balance", "upstream-hash-by", "affinity",
		"session-cookie-name", "session-cookie-path", "session-cookie-max-age", "auth-type", "auth-secret",
		"auth-secret-type", "auth-realm", "auth-url", "auth-method", "auth-signin", "auth-response-headers",
		"auth-request-redirect", "auth-tls-secret", "auth-tls-verify-client", "auth-tls-verify-depth",
		"auth-tls-pass-certificate-to-upstream", "proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-name",
		"proxy-ssl-server-name", "ssl-passthrough", "custom-headers", "default-backend", "service-upstream",
		"mirror-target", "server-alias", "custom-http-errors"} {
		a := annotationByKey[k]
		if a == nil || a.Status != Implemented && a.Status != NotEnforced {
			t.Errorf("%s is not translated", k)
		}
	}
	for _, k := range []string{"configuration-snippet", "server-snippet", "stream-snippet", "auth-snippet"} {
		if a := annotationByKey[k]; a == nil || a.Status != Refused {
			t.Errorf("%s is not refused", k)
		}
	}
}
