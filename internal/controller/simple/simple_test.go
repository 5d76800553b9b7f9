package simple

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "empty document", in: "", wantErr: `apiVersion: must be "nuncio.dev/v1alpha1", got ""`},
		{name: "a list", in: "- a\n", wantErr: "a config must be a mapping with apiVersion, kind and listeners, got a list"},
		{name: "not YAML", in: "a: [b\n", wantErr: "simple: yaml:"},
		{name: "list where a mapping goes", in: "apiVersion: nuncio.dev/v1alpha1\nkind: Config\nadmin: [x]\n", wantErr: "admin: must be a mapping, got a list"},
		{name: "mapping where a list goes", in: "listeners: {name: x}\n", wantErr: "listeners: must be a list, got a mapping"},
		{name: "fraction where an integer goes", in: "listeners: [{maxConnections: 1.5}]\n", wantErr: "listeners[0].maxConnections: must be a whole number from 0 to 4294967295, got 1.5"},
		{name: "number where a string goes", in: "listeners: [{name: 1}]\n", wantErr: "listeners[0].name: must be a string, got a number (quote it)"},
		{name: "string where a boolean goes", in: "listeners: [{http2: \"yes\"}]\n", wantErr: "listeners[0].http2: must be true or false, got a string"},
		{name: "unknown map entry value type", in: "listeners: [{routes: [{match: {headers: {a: [1]}}}]}]\n", wantErr: `listeners[0].routes[0].match.headers["a"]: must be a string, got a list`},
		{name: "no suggestion when nothing is close", in: "zzzzzzzz: 1\n", wantErr: "zzzzzzzz: unknown field\n"},
		{name: "endpoint of the wrong type", in: "backends: [{endpoints: [8080]}]\n", wantErr: `backends[0].endpoints[0]: must be "host:port" or {address, weight}, got a number`},
		{name: "unknown endpoint field", in: "backends: [{endpoints: [{adress: a:1}]}]\n", wantErr: "backends[0].endpoints[0].adress: unknown field; did you mean address?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("no error; want one containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error()+"\n", tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{a: "", b: "abc", want: 3},
		{a: "match", b: "match", want: 0},
		{a: "mach", b: "match", want: 1},
		{a: "wieght", b: "weight", want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.a+"-"+tc.b, func(t *testing.T) {
			if got := editDistance(tc.a, tc.b); got != tc.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

const tlsConfig = `apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: https
  address: 127.0.0.1:8443
  tls:
    certificates: [{cert: certs/a.pem, key: /abs/a-key.pem}]
  routes: [{backend: api}]
backends:
- name: api
  endpoints: ["127.0.0.1:9000"]
  tls: {ca: ca.pem}
`

// TestFilePaths checks where relative certificate paths point for each way of translating.
func TestFilePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nuncio.yaml")
	if err := os.WriteFile(path, []byte(tlsConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(tlsConfig))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		translate func() ([]byte, error)
		want      []string
	}{
		{
			name:      "Translate leaves paths as written",
			translate: func() ([]byte, error) { return marshal(Translate(cfg)) },
			want:      []string{"filename: certs/a.pem", "filename: /abs/a-key.pem", "filename: ca.pem"},
		},
		{
			name:      "Options.BaseDir resolves relative paths",
			translate: func() ([]byte, error) { return marshal(Options{BaseDir: "/srv"}.Translate(cfg)) },
			want:      []string{"filename: /srv/certs/a.pem", "filename: /abs/a-key.pem", "filename: /srv/ca.pem"},
		},
		{
			name:      "TranslateFile resolves against the file's directory",
			translate: func() ([]byte, error) { return marshal(TranslateFile(path)) },
			want:      []string{"filename: " + filepath.Join(dir, "certs/a.pem"), "filename: /abs/a-key.pem", "filename: " + filepath.Join(dir, "ca.pem")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.translate()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

func marshal(m *bootstrapv3.Bootstrap, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return envoyconfig.MarshalYAML(m)
}

func TestTranslateFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "missing file", path: filepath.Join(dir, "none.yaml"), wantErr: "no such file"},
		{name: "invalid config names the file", path: bad, wantErr: bad + ": simple: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TranslateFile(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestTranslateValidates covers configs built in code, which never went through Parse.
func TestTranslateValidates(t *testing.T) {
	_, err := Translate(&v1alpha1.Config{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.KindConfig})
	if err == nil || !strings.Contains(err.Error(), "listeners: at least one listener is required") {
		t.Errorf("err = %v", err)
	}
}

// TestDeterministic translates a config full of maps many times: Go randomises map order, so
// any unsorted iteration shows up as a difference.
func TestDeterministic(t *testing.T) {
	data, err := os.ReadFile("testdata/headers.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, err := translateBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := translateBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Fatal("two translations of the same config differ")
		}
	}
}
