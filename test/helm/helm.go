// Package helmtest renders the Helm chart at deploy/helm/nuncio with the real helm binary, for
// the chart's own tests here (golden output, lint, security properties, the gateway's bootstrap
// run for real) and for test/k8s, which applies every rendered object to a real API server.
//
// helm is built from the Go module proxy by tools/helm.sh and cached outside the repository;
// tests find it at $HELM or in that cache and skip, saying how to get it, when it is missing.
package helmtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the Kubernetes version charts are rendered and linted for: the one
// tools/kube-apiserver.sh builds, which test/k8s applies the output to. helm built from the module
// proxy lacks the version stamps of helm's own release builds and would otherwise assume v1.20.
const KubeVersion = "v1.36.3"

// ErrNoHelm means helm is not available here; tests skip on it.
var ErrNoHelm = errors.New("helmtest: helm is not built: run tools/test-deps.sh or tools/helm.sh (once per machine), or set HELM")

// Binary finds helm: $HELM, else the binary tools/helm.sh has cached. It never builds helm.
func Binary() (string, error) {
	if p := os.Getenv("HELM"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "tools/helm.sh"), "--check").Output()
	if err != nil {
		return "", ErrNoHelm
	}
	return strings.TrimSpace(string(out)), nil
}

// RepoRoot is the directory holding go.mod, found from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("helmtest: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ChartDir is deploy/helm/nuncio in the repository.
func ChartDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy/helm/nuncio"), nil
}

// Release names what is rendered: the release, its namespace and the values files applied in
// order (none for the chart's defaults).
type Release struct {
	Name, Namespace string
	ValuesFiles     []string
}

// Template runs `helm template` on the chart and returns the manifest.
func Template(helm string, r Release) ([]byte, error) {
	chart, err := ChartDir()
	if err != nil {
		return nil, err
	}
	args := []string{"template", r.Name, chart, "--namespace", r.Namespace, "--kube-version", KubeVersion}
	for _, f := range r.ValuesFiles {
		args = append(args, "--values", f)
	}
	return run(helm, args...)
}

// Lint runs `helm lint --strict` on the chart with the values files.
func Lint(helm string, valuesFiles ...string) ([]byte, error) {
	chart, err := ChartDir()
	if err != nil {
		return nil, err
	}
	args := []string{"lint", "--strict", "--kube-version", KubeVersion, chart}
	for _, f := range valuesFiles {
		args = append(args, "--values", f)
	}
	return run(helm, args...)
}

func run(helm string, args ...string) ([]byte, error) {
	cmd := exec.Command(helm, args...)
	// helm keeps its caches and repositories under these; the tests need none of them, and
	// must not write into the home directory of whoever runs them.
	tmp, err := os.MkdirTemp("", "helmtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+tmp, "HELM_CONFIG_HOME="+tmp, "HELM_DATA_HOME="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Objects splits a manifest into its objects, in order, leaving out empty documents.
func Objects(manifest []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for i, doc := range SplitDocuments(manifest) {
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("helmtest: document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// SplitDocuments splits a YAML stream at its "---" lines.
func SplitDocuments(manifest []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for line := range bytes.Lines(manifest) {
		if bytes.Equal(bytes.TrimRight(line, " \r\n"), []byte("---")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}
