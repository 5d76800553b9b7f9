package k8stest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	helmtest "github.com/nuncio-gw/nuncio/test/helm"
)

// TestHelmChartDryRun renders deploy/helm/nuncio with its defaults and with each value set of
// test/helm/testdata/values, and applies every object to the real API server (server-side
// apply, dry run): the API server's own validation and defaulting, not a schema copied into the
// test, says whether the chart installs. Objects whose kind the API server does not serve (the
// ServiceMonitor, without prometheus-operator's CRDs) are skipped and logged.
func TestHelmChartDryRun(t *testing.T) {
	helm, err := helmtest.Binary()
	if errors.Is(err, helmtest.ErrNoHelm) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	env := Shared(t)
	cs := clientset(t, env)
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	files, err := filepath.Glob("../helm/testdata/values/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Proof that the dry run validates: values the API server must refuse.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("controller: {replicas: -1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type dryRunCase struct {
		name    string
		values  []string
		refused []string // "Kind name" of the objects the API server must refuse
	}
	tests := []dryRunCase{
		{name: "default"},
		{name: "refused", values: []string{bad}, refused: []string{"Deployment nuncio-controller"}},
	}
	for _, f := range files {
		tests = append(tests, dryRunCase{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), values: []string{f}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := testNamespace(t, cs)
			manifest, err := helmtest.Template(helm, helmtest.Release{Name: "nuncio", Namespace: ns, ValuesFiles: tc.values})
			if err != nil {
				t.Fatal(err)
			}
			objs, err := helmtest.Objects(manifest)
			if err != nil {
				t.Fatal(err)
			}
			applied := 0
			var refused []string
			for _, obj := range objs {
				gvk := obj.GroupVersionKind()
				m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				if meta.IsNoMatchError(err) {
					t.Logf("skipped %s %s: the API server does not serve %s (its CRD is not installed)", gvk.Kind, obj.GetName(), gvk.GroupVersion())
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
				if m.Scope.Name() == meta.RESTScopeNameNamespace {
					if obj.GetNamespace() != ns {
						t.Errorf("%s %s: namespace %q, want the release's %q", gvk.Kind, obj.GetName(), obj.GetNamespace(), ns)
					}
					r = dyn.Resource(m.Resource).Namespace(ns)
				}
				_, err = r.Apply(context.Background(), obj.GetName(), obj, metav1.ApplyOptions{
					FieldManager: "nuncio-helm-test", Force: true, DryRun: []string{metav1.DryRunAll},
				})
				if err != nil {
					what := gvk.Kind + " " + obj.GetName()
					refused = append(refused, what)
					if !slices.Contains(tc.refused, what) {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				applied++
			}
			for _, what := range tc.refused {
				if !slices.Contains(refused, what) {
					t.Errorf("%s was accepted, want it refused", what)
				}
			}
			t.Logf("%d of %d objects accepted (dry run)", applied, len(objs))
		})
	}
}
