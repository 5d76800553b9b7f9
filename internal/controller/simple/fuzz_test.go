package simple

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// FuzzTranslate holds validation to its promise: a config that Parse accepts translates into a
// bootstrap that Envoy's own proto constraints accept too, so a bad config is reported against
// the simple config's fields and never as an opaque rejection of the generated resources.
func FuzzTranslate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.in.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			return
		}
		b, err := Options{BaseDir: "/etc/nuncio"}.Translate(cfg)
		if err != nil {
			t.Fatalf("Parse accepted a config that Translate rejects: %v", err)
		}
		if err := b.ValidateAll(); err != nil {
			t.Fatalf("translated bootstrap violates Envoy's constraints: %v", err)
		}
		if _, err := envoyconfig.MarshalYAML(b); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzTranslateFields puts arbitrary strings into the fields that reach Envoy most directly,
// bypassing YAML, which rarely survives byte-level mutation.
func FuzzTranslateFields(f *testing.F) {
	f.Add("/api/", "x-env", "canary", "api.example.com", "/new", "^/v[0-9]+/", "internal:8080", "10.0.0.1:80")
	f.Add("/", ":authority", "", "*", "/", "a|b", "h", "[::1]:1")
	f.Fuzz(func(t *testing.T, prefix, header, value, host, path, regex, rewriteHost, endpoint string) {
		cfg := &v1alpha1.Config{
			APIVersion: v1alpha1.APIVersion,
			Kind:       v1alpha1.KindConfig,
			Listeners: []v1alpha1.Listener{{
				Name:    "web",
				Address: "0.0.0.0:8080",
				Routes: []v1alpha1.Route{
					{
						Hosts:   []string{host},
						Match:   &v1alpha1.Match{Prefix: prefix, Headers: map[string]string{header: value}, Query: map[string]string{header: value}},
						Backend: "api",
						Rewrite: &v1alpha1.Rewrite{Prefix: path, Host: rewriteHost},
						Headers: &v1alpha1.HeaderRules{
							Request:  &v1alpha1.HeaderOps{Set: map[string]string{header: value}, Remove: []string{header}},
							Response: &v1alpha1.HeaderOps{Add: map[string]string{header: value}},
						},
					},
					{
						Match:   &v1alpha1.Match{Regex: regex},
						Backend: "api",
						Rewrite: &v1alpha1.Rewrite{Regex: &v1alpha1.RegexRewrite{Pattern: regex, Substitution: value}},
					},
					{Redirect: &v1alpha1.Redirect{Host: rewriteHost, Path: path}},
				},
			}},
			Backends: []v1alpha1.Backend{{
				Name:      "api",
				Endpoints: []v1alpha1.Endpoint{{Address: endpoint}},
				TLS:       &v1alpha1.BackendTLS{SNI: host},
			}},
		}
		b, err := Translate(cfg)
		if err != nil {
			return
		}
		if err := b.ValidateAll(); err != nil {
			t.Fatalf("translated bootstrap violates Envoy's constraints: %v", err)
		}
	})
}
