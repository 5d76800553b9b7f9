package basicauth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/basicauth"
)

func TestConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(file, []byte(shaEntry("a", "b")+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sha := shaEntry("alice", "pw")
	for _, tc := range []struct {
		name     string
		yaml     string
		perRoute bool
		wantErr  string
	}{
		{name: "inline users", yaml: `{users: {inline_string: "` + sha + `"}, forward_username_header: X-User, authentication_header: Proxy-Authorization, realm: r}`},
		{name: "users from a file with CRLF", yaml: `{users: {filename: ` + file + `}}`},
		{name: "bcrypt", yaml: `{users: {inline_string: "bob:$2y$05$abcdefghijklmnopqrstuuKkLzL9hVjW4oC5f5kL1sY9vCkC8R1zK"}}`},
		{name: "per-route", perRoute: true, yaml: `{users: {inline_string: "` + sha + `"}, realm: r}`},
		{name: "no users", yaml: `{}`, wantErr: "basic_auth: users: required"},
		{name: "missing file", yaml: `{users: {filename: /nonexistent/htpasswd}}`, wantErr: "basic_auth: users.filename:"},
		{name: "environment variable", yaml: `{users: {environment_variable: HTPASSWD}}`, wantErr: "basic_auth: users.environment_variable: not supported"},
		{name: "apr1", yaml: `{users: {inline_string: "bob:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"}}`},
		{name: "broken apr1", yaml: `{users: {inline_string: "bob:$apr1$salt$hash"}}`, wantErr: `invalid $apr1$ hash for "bob"`},
		{name: "SHA-512 crypt", yaml: `{users: {inline_string: "bob:$6$salt$hash"}}`, wantErr: `unsupported htpasswd format for "bob"`},
		{name: "crypt hash", yaml: `{users: {inline_string: "bob:abJnggxhB/yJs"}}`, wantErr: `unsupported htpasswd format for "bob"`},
		{name: "short SHA", yaml: `{users: {inline_string: "bob:{SHA}abc="}}`, wantErr: `invalid SHA hash for "bob"`},
		{name: "broken bcrypt", yaml: `{users: {inline_string: "bob:$2y$99$x"}}`, wantErr: `invalid bcrypt hash for "bob"`},
		{name: "duplicate user", yaml: `{users: {inline_string: "` + sha + `\n` + sha + `"}}`, wantErr: `duplicate user "alice"`},
		{name: "no colon", yaml: `{users: {inline_string: "alice"}}`, wantErr: "line 1: invalid htpasswd format"},
		{name: "empty name", yaml: `{users: {inline_string: ":{SHA}x"}}`, wantErr: "line 1: empty user name or password"},
		{name: "allow_missing", yaml: `{users: {inline_string: "` + sha + `"}, allow_missing: true}`, wantErr: "basic_auth: allow_missing: not supported"},
		{name: "emit_dynamic_metadata", yaml: `{users: {inline_string: "` + sha + `"}, emit_dynamic_metadata: true}`, wantErr: "basic_auth: emit_dynamic_metadata: not supported"},
		{name: "bad header name", yaml: `{users: {inline_string: "` + sha + `"}, forward_username_header: "x user"}`, wantErr: "basic_auth: forward_username_header:"},
		{name: "realm injection", yaml: `{users: {inline_string: "` + sha + `"}, realm: "a\r\nx-evil: 1"}`, wantErr: "basic_auth: realm: control characters"},
		{name: "per-route without users", perRoute: true, yaml: `{realm: r}`, wantErr: "basic_auth: users: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.perRoute {
				m := &basicauthv3.BasicAuthPerRoute{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = basicauth.Factory{}.NewOverride(m)
			} else {
				m := &basicauthv3.BasicAuth{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = basicauth.Factory{}.NewConfig(m)
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
