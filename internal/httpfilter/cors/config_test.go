package cors_test

import (
	"strings"
	"testing"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/cors"
)

func TestPolicyConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "full policy", yaml: `{allow_origin_string_match: [{exact: "https://a"}, {prefix: "https://b", ignore_case: true}, {contains: x}, {safe_regex: {regex: "a.*"}}], allow_methods: GET, allow_headers: x, expose_headers: "y", max_age: "1", allow_credentials: true, allow_private_network_access: true, forward_not_matching_preflights: false, filter_enabled: {default_value: {numerator: 50}}, shadow_enabled: {default_value: {numerator: 5, denominator: TEN_THOUSAND}}}`},
		{name: "empty policy", yaml: `{}`},
		{name: "runtime key", yaml: `{filter_enabled: {runtime_key: cors.on, default_value: {numerator: 100}}}`, wantErr: "cors: filter_enabled.runtime_key: not supported"},
		{name: "missing default", yaml: `{shadow_enabled: {}}`, wantErr: "cors: shadow_enabled.default_value: required"},
		{name: "bad regex", yaml: `{allow_origin_string_match: [{exact: a}, {safe_regex: {regex: "("}}]}`, wantErr: "cors: allow_origin_string_match[1]: safe_regex.regex: "},
		{name: "empty prefix", yaml: `{allow_origin_string_match: [{prefix: ""}]}`, wantErr: "allow_origin_string_match[0]: "},
		{name: "no pattern", yaml: `{allow_origin_string_match: [{ignore_case: true}]}`, wantErr: "allow_origin_string_match[0]: one of"},
		{name: "header injection", yaml: `{allow_methods: "GET\r\nx-evil: 1"}`, wantErr: "cors: allow_methods: must not contain CR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &corsv3.CorsPolicy{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			_, err := cors.Factory{}.NewOverride(m)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestFilterConfigTypes(t *testing.T) {
	if _, err := (cors.Factory{}).NewConfig(&corsv3.CorsPolicy{}); err == nil {
		t.Error("a CorsPolicy as the chain's typed_config was accepted")
	}
	if _, err := (cors.Factory{}).NewOverride(&corsv3.Cors{}); err == nil {
		t.Error("a Cors as a per-route config was accepted")
	}
	if _, err := (cors.Factory{}).NewConfig(&corsv3.Cors{}); err != nil {
		t.Error(err)
	}
}
