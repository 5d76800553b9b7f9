package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

const simpleOK = `apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 127.0.0.1:8080
  routes:
  - name: health
    match: {path: /healthz}
    respond: {status: 200, body: "ok\n"}
  - name: app
    backend: app
backends:
- name: app
  endpoints: ["127.0.0.1:3000"]
`

const simpleBadAddress = `apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: nowhere
  routes:
  - respond: {status: 200}
`

const envoyOK = `static_resources:
  clusters:
  - name: a
    load_assignment:
      cluster_name: a
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}}]}]
`

const envoyBadPolicy = `static_resources:
  clusters:
  - name: a
    lb_policy: CLUSTER_PROVIDED
`

func TestRealMain(t *testing.T) {
	tests := []struct {
		name string
		// files are written to a temporary directory; "$DIR" in args names it.
		files      map[string]string
		args       []string
		wantCode   int
		wantStdout []string // substrings
		wantStderr []string // substrings
		// check inspects stdout further.
		check func(t *testing.T, stdout []byte)
	}{
		{name: "no command", args: nil, wantCode: 2, wantStderr: []string{"usage: nuncio <command>"}},
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: []string{"nuncio "}},
		{name: "--version", args: []string{"--version"}, wantCode: 0, wantStdout: []string{"nuncio "}},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: []string{"commands:", "validate", "translate"}},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStdout: []string{"usage: nuncio <command>"}},
		{
			name:       "unknown command",
			args:       []string{"frobnicate"},
			wantCode:   2,
			wantStderr: []string{`unknown command "frobnicate"`, "usage: nuncio <command>"},
		},
		{
			name:       "validate without a file",
			args:       []string{"validate"},
			wantCode:   2,
			wantStderr: []string{"usage: nuncio validate FILE"},
		},
		{
			name:       "validate simple config",
			files:      map[string]string{"nuncio.yaml": simpleOK},
			args:       []string{"validate", "$DIR/nuncio.yaml"},
			wantStdout: []string{"$DIR/nuncio.yaml: OK"},
		},
		{
			name:       "validate Envoy config with -c",
			files:      map[string]string{"envoy.yaml": envoyOK},
			args:       []string{"validate", "-c", "$DIR/envoy.yaml"},
			wantStdout: []string{"$DIR/envoy.yaml: OK"},
		},
		{
			name:       "validate bad simple field",
			files:      map[string]string{"nuncio.yaml": simpleBadAddress},
			args:       []string{"validate", "$DIR/nuncio.yaml"},
			wantCode:   1,
			wantStderr: []string{"$DIR/nuncio.yaml: ", "listeners[0].address"},
		},
		{
			name:       "validate bad Envoy field",
			files:      map[string]string{"envoy.yaml": envoyBadPolicy},
			args:       []string{"validate", "$DIR/envoy.yaml"},
			wantCode:   1,
			wantStderr: []string{"$DIR/envoy.yaml: static_resources.clusters[0].lb_policy: CLUSTER_PROVIDED not supported"},
		},
		{
			name:       "validate several files, one bad",
			files:      map[string]string{"good.yaml": simpleOK, "bad.yaml": envoyBadPolicy},
			args:       []string{"validate", "$DIR/good.yaml", "$DIR/bad.yaml"},
			wantCode:   1,
			wantStdout: []string{"$DIR/good.yaml: OK"},
			wantStderr: []string{"$DIR/bad.yaml: static_resources.clusters[0].lb_policy"},
		},
		{
			name:       "validate missing file",
			args:       []string{"validate", "$DIR/absent.yaml"},
			wantCode:   1,
			wantStderr: []string{"$DIR/absent.yaml: no such file or directory"},
		},
		{
			name:     "translate simple config to Envoy",
			files:    map[string]string{"nuncio.yaml": simpleOK},
			args:     []string{"translate", "--to", "envoy", "-c", "$DIR/nuncio.yaml"},
			wantCode: 0,
			check: func(t *testing.T, stdout []byte) {
				b, err := envoyconfig.UnmarshalBootstrap(stdout)
				if err != nil {
					t.Fatalf("output is not an Envoy bootstrap: %v\n%s", err, stdout)
				}
				ls := b.GetStaticResources().GetListeners()
				if len(ls) != 1 || ls[0].GetName() != "web" {
					t.Errorf("listeners %v, want one named web", ls)
				}
				cs := b.GetStaticResources().GetClusters()
				if len(cs) != 1 || cs[0].GetName() != "app" {
					t.Errorf("clusters %v, want one named app", cs)
				}
			},
		},
		{
			name:       "translate with the file as argument",
			files:      map[string]string{"nuncio.yaml": simpleOK},
			args:       []string{"translate", "$DIR/nuncio.yaml"},
			wantStdout: []string{"static_resources:"},
		},
		{
			name:       "translate to another format",
			files:      map[string]string{"nuncio.yaml": simpleOK},
			args:       []string{"translate", "--to", "nginx", "-c", "$DIR/nuncio.yaml"},
			wantCode:   2,
			wantStderr: []string{`--to "nginx": only "envoy" is supported`},
		},
		{
			name:       "translate without a file",
			args:       []string{"translate"},
			wantCode:   2,
			wantStderr: []string{"usage: nuncio translate"},
		},
		{
			name:       "translate a bad file",
			files:      map[string]string{"nuncio.yaml": simpleBadAddress},
			args:       []string{"translate", "$DIR/nuncio.yaml"},
			wantCode:   1,
			wantStderr: []string{"$DIR/nuncio.yaml: ", "listeners[0].address"},
		},
		{
			name:     "run with an unknown flag",
			args:     []string{"run", "--frob"},
			wantCode: 2,
		},
		{
			name:       "run with a bad log level",
			args:       []string{"run", "--log-level", "loud"},
			wantCode:   2,
			wantStderr: []string{"--log-level"},
		},
		{
			// The config fails before anything binds, so nothing is left running.
			name:       "run with a bad config",
			files:      map[string]string{"envoy.yaml": envoyBadPolicy},
			args:       []string{"run", "-c", "$DIR/envoy.yaml", "--log-level", "error"},
			wantCode:   1,
			wantStderr: []string{"nuncio: $DIR/envoy.yaml: static_resources.clusters[0].lb_policy"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			expand := func(s string) string { return strings.ReplaceAll(s, "$DIR", dir) }
			var args []string
			for _, a := range tc.args {
				args = append(args, expand(a))
			}
			var stdout, stderr bytes.Buffer
			code := realMain(args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, &stdout, &stderr)
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout.String(), expand(w)) {
					t.Errorf("stdout does not contain %q:\n%s", expand(w), &stdout)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr.String(), expand(w)) {
					t.Errorf("stderr does not contain %q:\n%s", expand(w), &stderr)
				}
			}
			if tc.check != nil {
				tc.check(t, stdout.Bytes())
			}
		})
	}
}
