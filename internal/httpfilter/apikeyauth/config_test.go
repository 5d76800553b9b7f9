package apikeyauth_test

import (
	"strings"
	"testing"

	apikeyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/api_key_auth/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/apikeyauth"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		perRoute bool
		wantErr  string
	}{
		{name: "full", yaml: `{credentials: [{key: k, client: c}], key_sources: [{header: x-key}, {query: k}, {cookie: k}], forwarding: {header: x-client, hide_credentials: true}}`},
		{name: "per-route", perRoute: true, yaml: `{credentials: [{key: k, client: c}], allowed_clients: [c]}`},
		{name: "empty key", yaml: `{credentials: [{client: c}]}`, wantErr: "api_key_auth: credentials[0].key: required"},
		{name: "empty client", yaml: `{credentials: [{key: k}]}`, wantErr: "api_key_auth: credentials[0].client: required"},
		{name: "duplicate key", yaml: `{credentials: [{key: k, client: a}, {key: k, client: b}]}`, wantErr: "api_key_auth: credentials[1].key: duplicate key"},
		{name: "empty source", yaml: `{key_sources: [{}]}`, wantErr: "api_key_auth: key_sources[0]: one of header, query, cookie required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.perRoute {
				m := &apikeyv3.ApiKeyAuthPerRoute{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = apikeyauth.Factory{}.NewOverride(m)
			} else {
				m := &apikeyv3.ApiKeyAuth{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = apikeyauth.Factory{}.NewConfig(m)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
