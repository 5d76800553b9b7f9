package csrf_test

import (
	"strings"
	"testing"

	csrfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/csrf/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/csrf"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "full", yaml: `{filter_enabled: {default_value: {numerator: 100}}, shadow_enabled: {default_value: {numerator: 1, denominator: MILLION}}, additional_origins: [{exact: a.example}, {safe_regex: {regex: ".*\\.b\\.example"}}]}`},
		{name: "filter_enabled required", yaml: `{}`, wantErr: "csrf: filter_enabled: required"},
		{name: "runtime key", yaml: `{filter_enabled: {runtime_key: k, default_value: {numerator: 100}}}`, wantErr: "csrf: filter_enabled.runtime_key: not supported"},
		{name: "bad origin matcher", yaml: `{filter_enabled: {default_value: {numerator: 100}}, additional_origins: [{prefix: ""}]}`, wantErr: "csrf: additional_origins[0]: empty pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &csrfv3.CsrfPolicy{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			_, err := csrf.Factory{}.NewConfig(m)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
