package simple

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

// goldenBaseDir stands in for the config file's directory, so that the goldens show how
// relative paths resolve without depending on where the repository is checked out.
const goldenBaseDir = "/etc/nuncio"

const expectErrorPrefix = "# expectError:"

// TestGolden translates each testdata/<case>.in.yaml and compares the IR with <case>.ir.yaml
// and the Envoy bootstrap with <case>.out.yaml, or, for a case whose first line is "# expectError: <substring>", checks that
// parsing or translating fails with an error containing it.
func TestGolden(t *testing.T) {
	golden.Prune(t, "testdata/*.out.yaml")
	golden.Prune(t, "testdata/*.ir.yaml")
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.in.yaml cases")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := translateBytes(data)
			if want, ok := expectedError(data); ok {
				if err == nil {
					t.Fatalf("translated without error; want an error containing %q", want)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not contain %q", err, want)
				}
				if _, statErr := os.Stat(out); statErr == nil && !golden.Updating() {
					t.Errorf("%s is stale: the case expects an error (run with -update to delete it)", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			golden.Check(t, out, got)
			checkRoundTrip(t, got)
			golden.Check(t, strings.TrimSuffix(in, ".in.yaml")+".ir.yaml", translateIR(t, data))
		})
	}
}

func translateBytes(data []byte) ([]byte, error) {
	cfg, err := Parse(data)
	if err != nil {
		return nil, err
	}
	b, err := Options{BaseDir: goldenBaseDir}.Translate(cfg)
	if err != nil {
		return nil, err
	}
	return envoyconfig.MarshalYAML(b)
}

// translateIR is the case's IR as YAML.
func translateIR(t *testing.T, data []byte) []byte {
	t.Helper()
	cfg, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Options{BaseDir: goldenBaseDir}.ToIR(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func expectedError(data []byte) (string, bool) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	s, ok := strings.CutPrefix(string(first), expectErrorPrefix)
	return strings.TrimSpace(s), ok
}

// checkRoundTrip reads the output back as Envoy would, catching output that only looks right.
func checkRoundTrip(t *testing.T, out []byte) {
	t.Helper()
	js, err := yaml.YAMLToJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, b); err != nil {
		t.Fatalf("output does not parse back: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Errorf("output fails Envoy's proto validation: %v", err)
	}
	again, err := envoyconfig.MarshalYAML(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("output changes when parsed and marshalled again")
	}
}
