package envoyconfig

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

func TestUnmarshalBootstrap(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // "" means success
	}{
		{name: "empty document", in: ""},
		{name: "json", in: `{"node": {"id": "a"}, "staticResources": {"clusters": [{"name": "c"}]}}`},
		{
			name: "typed config resolves",
			in: `static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`,
		},
		{
			name:    "unknown field with line and path",
			in:      "node:\n  id: a\nstatic_resources:\n  clusters:\n  - name: c\n    conect_timeout: 1s\n",
			wantErr: `line 6: static_resources.clusters[0].conect_timeout: unknown field "conect_timeout"`,
		},
		{
			name:    "unknown enum value",
			in:      "static_resources:\n  clusters:\n  - {name: c, type: STATIK}\n",
			wantErr: `static_resources.clusters[0].type: unknown value "STATIK" (want one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST)`,
		},
		{
			name:    "YAML 1.1 boolean where a string belongs",
			in:      "node:\n  id: no\n",
			wantErr: "line 2: node.id: want a string, got bool false (quote the value)",
		},
		{
			name:    "unknown Any type",
			in:      "static_resources:\n  listeners:\n  - filter_chains:\n    - filters:\n      - typed_config: {\"@type\": type.googleapis.com/example.Nope}\n",
			wantErr: `static_resources.listeners[0].filter_chains[0].filters[0].typed_config.@type: unknown type "type.googleapis.com/example.Nope"`,
		},
		{
			name:    "object expected",
			in:      "admin: 5\n",
			wantErr: "admin: want an object (Admin), got number",
		},
		{
			name:    "syntax error",
			in:      "node: [\n",
			wantErr: "yaml: line 1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := UnmarshalBootstrap([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b == nil {
					t.Fatal("nil bootstrap")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestUnmarshalBootstrapJSON checks that decoding the JSON form beside the original document
// gives what decoding the document gives, errors and their lines included.
func TestUnmarshalBootstrapJSON(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{name: "valid", doc: "static_resources:\n  clusters:\n  - name: a\n"},
		{name: "unknown field", doc: "static_resources:\n  clusters:\n  - name: a\n    bogus: 1\n"},
		{name: "bad enum", doc: "static_resources:\n  clusters:\n  - name: a\n    lb_policy: NOPE\n"},
		{name: "empty", doc: "# nothing\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			js, err := yaml.YAMLToJSON([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := UnmarshalBootstrap([]byte(tc.doc))
			got, gotErr := UnmarshalBootstrapJSON(js, []byte(tc.doc))
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, want %v", gotErr, wantErr)
			}
			if !proto.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
