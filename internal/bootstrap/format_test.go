package bootstrap_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
)

// TestSniff checks the one format sniffer on each kind of file it may be given.
func TestSniff(t *testing.T) {
	const simpleYAML = `apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 127.0.0.1:8080
  routes:
  - backend: api
backends:
- name: api
  endpoints: ["10.0.0.1:80"]
`
	tests := []struct {
		name       string
		data       string
		wantFormat bootstrap.Format
		wantErr    string // substring of the error; "" when the file is accepted
		wantIs     error
	}{
		{
			name:       "envoy YAML",
			data:       "static_resources:\n  clusters:\n  - name: a\n",
			wantFormat: bootstrap.Envoy,
		},
		{
			name:       "envoy JSON",
			data:       `{"static_resources": {"clusters": [{"name": "a"}]}}`,
			wantFormat: bootstrap.Envoy,
		},
		{
			name:       "simple YAML",
			data:       simpleYAML,
			wantFormat: bootstrap.Simple,
		},
		{
			name:       "simple JSON",
			data:       `{"apiVersion": "nuncio.dev/v1alpha1", "kind": "Config", "listeners": [{"name": "web", "address": "127.0.0.1:8080", "routes": [{"backend": "api"}]}], "backends": [{"name": "api", "endpoints": ["10.0.0.1:80"]}]}`,
			wantFormat: bootstrap.Simple,
		},
		{
			name:       "simple in YAML flow style, which starts like JSON",
			data:       `{apiVersion: nuncio.dev/v1alpha1, kind: Config, listeners: [{name: web, address: "127.0.0.1:8080", routes: [{backend: api}]}], backends: [{name: api, endpoints: ["10.0.0.1:80"]}]}`,
			wantFormat: bootstrap.Simple,
		},
		{
			name:       "envoy with no resources",
			data:       "{}\n",
			wantFormat: bootstrap.Envoy,
		},
		{
			name:    "unknown apiVersion",
			data:    "apiVersion: nuncio.dev/v9\nkind: Config\n",
			wantErr: `apiVersion: "nuncio.dev/v9" not supported`,
		},
		{
			name:    "syntax error",
			data:    "static_resources: [\n",
			wantErr: "yaml: line 1",
		},
		{
			name:    "syntax error in JSON with an apiVersion",
			data:    `{"apiVersion": "nuncio.dev/v1alpha1", "kind": `,
			wantErr: "yaml:",
		},
		{
			name:   "empty file",
			data:   "",
			wantIs: bootstrap.ErrEmpty,
		},
		{
			name:   "blanks and comments only",
			data:   "\n  \n# nothing yet\n",
			wantIs: bootstrap.ErrEmpty,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := bootstrap.Sniff("/etc/nuncio/nuncio.yaml", []byte(tc.data))
			if tc.wantErr != "" || tc.wantIs != nil {
				if err == nil {
					t.Fatalf("accepted as %v, want an error", d.Format)
				}
				if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("error %q, want %q", err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != tc.wantFormat {
				t.Errorf("format %v, want %v", d.Format, tc.wantFormat)
			}
			if !json.Valid(d.JSON) {
				t.Errorf("JSON form is not JSON: %s", d.JSON)
			}
			if string(d.Data) != tc.data || d.Path != "/etc/nuncio/nuncio.yaml" {
				t.Errorf("document lost its path or bytes: %q %q", d.Path, d.Data)
			}
			if _, err := d.Bootstrap(); err != nil {
				t.Errorf("Bootstrap: %v", err)
			}
		})
	}
}

// TestParseErrorsNameTheField checks that a bad document's error gives the field path and the
// reason in either format; callers put the file in front.
func TestParseErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr []string
	}{
		{
			name:    "envoy: unknown field",
			data:    "static_resources:\n  clusters:\n  - name: a\n    bogus: 1\n",
			wantErr: []string{"line 4", "static_resources.clusters[0]", "bogus"},
		},
		{
			name:    "simple: unknown backend",
			data:    "apiVersion: nuncio.dev/v1alpha1\nkind: Config\nlisteners:\n- name: web\n  address: 127.0.0.1:8080\n  routes:\n  - backend: nope\n",
			wantErr: []string{"listeners[0].routes[0].backend", "nope"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bootstrap.Parse("nuncio.yaml", []byte(tc.data))
			if err == nil {
				t.Fatal("parsed a bad document")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
