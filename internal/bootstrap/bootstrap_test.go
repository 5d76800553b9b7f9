package bootstrap_test

//go:generate sh -c "cd ../../examples/envoy/certs && go run gen.go"

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// TestExamples loads every YAML file under examples/ as the binary would, from the repository
// root: Envoy bootstraps name files relative to the working directory, as Envoy does, and
// simple configs relative to themselves.
func TestExamples(t *testing.T) {
	t.Chdir("../..")
	var files []string
	err := filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A sample of what must be there, so that a moved directory does not pass as empty.
	for _, w := range []string{"examples/envoy/basic.yaml", "examples/envoy/tls.yaml", "examples/simple/basic.yaml", "examples/simple/tls.yaml"} {
		if !slices.Contains(files, w) {
			t.Errorf("%s missing", w)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := bootstrap.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decode.Bootstrap(src, httpfilter.Default)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Listeners) == 0 {
				t.Fatalf("no listeners decoded")
			}
		})
	}
}

func TestDefault(t *testing.T) {
	m, err := decode.Bootstrap(bootstrap.Default(), httpfilter.Default)
	if err != nil {
		t.Fatal(err)
	}
	if m.Admin == nil || m.Admin.Address.Host != "127.0.0.1" || m.Admin.Address.Port != 9901 {
		t.Errorf("admin = %+v, want 127.0.0.1:9901", m.Admin)
	}
	if len(m.Listeners) != 1 {
		t.Fatalf("%d listeners, want 1", len(m.Listeners))
	}
	l := m.Listeners[0]
	if l.Address.Host != "0.0.0.0" || l.Address.Port != 8080 {
		t.Errorf("listener address = %+v, want 0.0.0.0:8080", l.Address)
	}
	vh := l.FilterChains[0].HCM.RouteConfig.VirtualHosts[0]
	if len(vh.Domains) != 1 || vh.Domains[0] != "*" {
		t.Errorf("domains = %v, want [*]", vh.Domains)
	}
	r := vh.Routes[0]
	if r.Match.Path != "/" || r.DirectResponse == nil || r.DirectResponse.Status != 200 {
		t.Fatalf("route = %+v, want prefix / answering 200", r)
	}
	if body := string(r.DirectResponse.Body); !strings.Contains(body, bootstrap.DefaultAdminURL) || !strings.Contains(body, "<html") {
		t.Errorf("welcome page does not link the admin API:\n%s", body)
	}
	if a, b := bootstrap.Default(), bootstrap.Default(); a == b {
		t.Errorf("Default returns a shared value; callers may modify it")
	}
}

// load is the loading `nuncio run` does: the file to a bootstrap, decoded; errors name the
// file, as the server's do.
func load(path string) (*model.Bootstrap, error) {
	src, err := bootstrap.Load(path)
	if err != nil {
		return nil, err
	}
	m, err := decode.Bootstrap(src, httpfilter.Default)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name       string
		content    string // written to dir/<file>
		file       string
		wantErr    string // prefix of the error after "<path>: "
		wantListen string // host:port of the first listener
	}{
		{
			name: "envoy bootstrap",
			file: "envoy.yaml",
			content: `static_resources:
  clusters:
  - name: a
    load_assignment:
      cluster_name: a
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 80}}}}]}]
`,
		},
		{
			name:    "envoy bootstrap as JSON",
			file:    "envoy.json",
			content: `{"static_resources": {"clusters": [{"name": "a"}]}}`,
		},
		{
			name: "simple format",
			file: "nuncio.yaml",
			content: `apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 0.0.0.0:8080
  routes:
  - backend: api
backends:
- name: api
  endpoints: ["10.0.0.1:8080"]
`,
			wantListen: "0.0.0.0:8080",
		},
		{
			name: "error carries the path",
			file: "nuncio.yaml",
			content: `static_resources:
  clusters:
  - name: a
    lb_policy: CLUSTER_PROVIDED
`,
			wantErr: "static_resources.clusters[0].lb_policy: CLUSTER_PROVIDED not supported",
		},
		{
			name:    "unknown apiVersion",
			file:    "nuncio.yaml",
			content: "apiVersion: nuncio.dev/v2\nkind: Config\n",
			wantErr: `apiVersion: "nuncio.dev/v2" not supported`,
		},
		{
			name:    "syntax error",
			file:    "broken.yaml",
			content: "static_resources: [\n",
			wantErr: "yaml: line 1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := load(path)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("loaded, want error %q", tc.wantErr)
				}
				if want := path + ": " + tc.wantErr; !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("error %q, want prefix %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m == nil {
				t.Fatal("nil result")
			}
			if tc.wantListen != "" {
				if len(m.Listeners) == 0 {
					t.Fatal("no listeners")
				}
				a := m.Listeners[0].Address
				if got := net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))); got != tc.wantListen {
					t.Errorf("listener on %s, want %s", got, tc.wantListen)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := bootstrap.Load(path)
	if want := path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}
