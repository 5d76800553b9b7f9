package jwtauthn

import (
	"strings"
	"testing"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/header"
)

// TestConfig: valid configurations compile; every unsupported or wrong field is refused
// with its path.
func TestConfig(t *testing.T) {
	jwks := jwksOf(t, newSigner(t, jose.ES256, "k"))
	local := "local_jwks: {inline_string: '" + jwks + "'}"
	remote := `remote_jwks: {http_uri: {uri: "https://idp.test/jwks", cluster: idp, timeout: 1s}}`
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "local provider and rules", yaml: "providers: {p: {issuer: x, " + local + "}}\nrules: [{match: {prefix: /}, requires: {provider_name: p}}]"},
		{name: "remote provider with retries", yaml: "providers: {p: {" + strings.TrimSuffix(remote, "}") + ", retry_policy: {num_retries: 3, retry_back_off: {base_interval: 0.1s}}, async_fetch: {}}}}"},
		{name: "requirement map and header rule", yaml: "providers: {p: {" + local + "}}\nrequirement_map: {r: {requires_all: {requirements: [{provider_name: p}, {allow_missing: {}}]}}}\nrules: [{match: {safe_regex: {regex: '/a.*'}, headers: [{name: x, string_match: {prefix: v}}]}, requirement_name: r}]"},
		{name: "unsupported provider field", yaml: "providers: {p: {" + local + ", subjects: {prefix: spiffe://}}}", wantErr: `providers["p"].subjects: not supported`},
		{name: "filter_state_rules", yaml: "filter_state_rules: {name: x}", wantErr: "filter_state_rules: not supported"},
		{name: "claim_path", yaml: "providers: {p: {" + local + ", claim_to_headers: [{header_name: x, claim_path: [{key: a}]}]}}", wantErr: `claim_to_headers[0].claim_path: not supported`},
		{name: "route match query_parameters", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {prefix: /, query_parameters: [{name: a}]}}]", wantErr: "rules[0].match.query_parameters: not supported"},
		{name: "no JWKS", yaml: "providers: {p: {issuer: x}}", wantErr: "one of local_jwks, remote_jwks required"},
		{name: "bad local JWKS", yaml: "providers: {p: {local_jwks: {inline_string: 'nope'}}}", wantErr: `providers["p"].local_jwks: jwks:`},
		{name: "remote without timeout", yaml: `providers: {p: {remote_jwks: {http_uri: {uri: "https://idp.test/jwks", cluster: idp}}}}`, wantErr: "http_uri.timeout: required"},
		{name: "remote without cluster", yaml: `providers: {p: {remote_jwks: {http_uri: {uri: "https://idp.test/jwks", timeout: 1s}}}}`, wantErr: "http_uri.cluster: required"},
		{name: "remote URI not absolute", yaml: `providers: {p: {remote_jwks: {http_uri: {uri: "/jwks", cluster: c, timeout: 1s}}}}`, wantErr: "http_uri.uri"},
		{name: "unknown provider in a rule", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {prefix: /}, requires: {provider_name: q}}]", wantErr: `rules[0].requires.provider_name: no provider "q"`},
		{name: "unknown requirement name", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {prefix: /}, requirement_name: q}]", wantErr: `rules[0].requirement_name: "q" not in requirement_map`},
		{name: "requires_any with one", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {prefix: /}, requires: {requires_any: {requirements: [{provider_name: p}]}}}]", wantErr: "requires_any.requirements: at least 2"},
		{name: "bad regex", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {safe_regex: {regex: '('}}}]", wantErr: "rules[0].match.safe_regex.regex"},
		{name: "extract_only_without_validation", yaml: "providers: {p: {" + local + "}}\nrules: [{match: {prefix: /}, requires: {extract_only_without_validation: {}}}]", wantErr: "extract_only_without_validation: not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(t, tc.yaml)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestOverride compiles PerRouteConfig.
func TestOverride(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "disabled", yaml: "disabled: true"},
		{name: "requirement name", yaml: "requirement_name: r"},
		{name: "disabled false", yaml: "disabled: false", wantErr: "disabled: must be true"},
		{name: "empty", yaml: "{}", wantErr: "one of disabled, requirement_name required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &jwtv3.PerRouteConfig{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			_, err := Factory{}.NewOverride(m)
			if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestExtract finds tokens where providers say they are.
func TestExtract(t *testing.T) {
	jwks := jwksOf(t, newSigner(t, jose.ES256, "k"))
	c, err := compile(t, `
providers:
  default: {local_jwks: {inline_string: '`+jwks+`'}}
  custom:
    local_jwks: {inline_string: '`+jwks+`'}
    from_headers: [{name: X-Auth, value_prefix: "Token "}, {name: x-raw}]
    from_params: [t]
    from_cookies: [session]
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		provider string
		path     string
		header   [][2]string
		want     string
	}{
		{name: "bearer", provider: "default", path: "/", header: [][2]string{{"authorization", "Bearer a.b.c"}}, want: "a.b.c"},
		{name: "bearer in any case", provider: "default", path: "/", header: [][2]string{{"authorization", "bearer a.b.c"}}, want: "a.b.c"},
		{name: "basic is not bearer", provider: "default", path: "/", header: [][2]string{{"authorization", "Basic dXNlcg=="}}, want: ""},
		{name: "access_token", provider: "default", path: "/x?y=1&access_token=a.b.c", want: "a.b.c"},
		{name: "prefix inside the value", provider: "custom", path: "/", header: [][2]string{{"x-auth", "v=1, Token a.b.c; more"}}, want: "a.b.c"},
		{name: "second header", provider: "custom", path: "/", header: [][2]string{{"x-raw", "a.b.c"}}, want: "a.b.c"},
		{name: "param", provider: "custom", path: "/?t=a.b.c", want: "a.b.c"},
		{name: "escaped param", provider: "custom", path: "/?t=a%2Eb.c", want: "a.b.c"},
		{name: "cookie", provider: "custom", path: "/", header: [][2]string{{"cookie", "a=1; session=a.b.c; z=2"}}, want: "a.b.c"},
		{name: "default locations not used", provider: "custom", path: "/?access_token=a.b.c", header: [][2]string{{"authorization", "Bearer a.b.c"}}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h header.Map
			h.Path = tc.path
			for _, f := range tc.header {
				h.Add(f[0], f[1])
			}
			if got, _ := c.byName[tc.provider].extract(&h); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
