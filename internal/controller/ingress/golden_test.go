package ingress

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

const optionsPrefix = "# options:"

// caseOptions are a case's translation options, from a first line "# options: {json}".
type caseOptions struct {
	Options
	ConfigMap string `json:"configMap"`
}

// TestGolden translates each testdata/<case>.in.yaml (Kubernetes objects; a first line
// "# options: {...}" sets Options and the global ConfigMap) and compares the problems and the
// xDS resources with <case>.out.yaml.
func TestGolden(t *testing.T) {
	golden.Prune(t, "testdata/*.out.yaml")
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 40 {
		t.Errorf("%d golden cases; keep at least 40", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, res := translateCase(t, data)
			golden.Check(t, out, got)
			decodeResources(t, res)
		})
	}
}

func translateCase(t *testing.T, data []byte) ([]byte, resourcesForDecode) {
	t.Helper()
	var co caseOptions
	if first, _, _ := bytes.Cut(data, []byte("\n")); bytes.HasPrefix(first, []byte(optionsPrefix)) {
		if err := json.Unmarshal(bytes.TrimPrefix(first, []byte(optionsPrefix)), &co); err != nil {
			t.Fatalf("options: %v", err)
		}
	}
	in, err := ReadObjects(data, co.ConfigMap)
	if err != nil {
		t.Fatal(err)
	}
	res := Translate(in, co.Options)
	r, err := xdsgen.ToXDS(res.Config)
	if err != nil {
		t.Fatalf("ToXDS: %v", err)
	}
	y, err := r.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(y, &doc); err != nil {
		t.Fatal(err)
	}
	var problems []string
	for _, p := range res.Problems {
		problems = append(problems, p.String())
	}
	if problems != nil {
		doc["problems"] = problems
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out, resourcesForDecode(r)
}
