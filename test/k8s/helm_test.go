package k8stest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	helmtest "github.com/nuncio-gw/nuncio/test/helm"
)

func helmBinary(t *testing.T) string {
	t.Helper()
	helm, err := helmtest.Binary()
	if errors.Is(err, helmtest.ErrNoHelm) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return helm
}

// applier applies rendered objects with server-side apply through the dynamic client, finding
// each kind's resource from the API server's discovery.
type applier struct {
	dyn    *dynamic.DynamicClient
	mapper meta.RESTMapper
}

func newApplier(t *testing.T, env *Env) *applier {
	t.Helper()
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply applies every object into namespace ns (dry run or for real) and returns, keyed by
// "Kind name", the error of each object the API server refused. Objects of kinds the API
// server does not serve are skipped and logged.
func (a *applier) apply(t *testing.T, ns string, objs []*unstructured.Unstructured, dryRun bool) map[string]error {
	t.Helper()
	opts := metav1.ApplyOptions{FieldManager: "nuncio-helm-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	refused := map[string]error{}
	applied := 0
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			t.Logf("skipped %s %s: the API server does not serve %s (its CRD is not installed)", gvk.Kind, obj.GetName(), gvk.GroupVersion())
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var r dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() != ns {
				t.Errorf("%s %s: namespace %q, want the release's %q", gvk.Kind, obj.GetName(), obj.GetNamespace(), ns)
			}
			r = a.dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := r.Apply(context.Background(), obj.GetName(), obj, opts); err != nil {
			refused[gvk.Kind+" "+obj.GetName()] = err
			continue
		}
		applied++
	}
	t.Logf("%d of %d objects accepted (dry run: %v)", applied, len(objs), dryRun)
	return refused
}

func renderChart(t *testing.T, helm, release, ns string, values ...string) []*unstructured.Unstructured {
	t.Helper()
	manifest, err := helmtest.Template(helm, helmtest.Release{Name: release, Namespace: ns, ValuesFiles: values})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := helmtest.Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestHelmChartDryRun renders deploy/helm/nuncio with its defaults and with each value set of
// test/helm/testdata/values, and applies every object to the real API server (server-side
// apply, dry run): the API server's own validation and defaulting, not a schema copied into the
// test, says whether the chart installs. Objects whose kind the API server does not serve (the
// ServiceMonitor, without prometheus-operator's CRDs) are skipped and logged.
func TestHelmChartDryRun(t *testing.T) {
	helm := helmBinary(t)
	env := Shared(t)
	cs := clientset(t, env)
	a := newApplier(t, env)

	files, err := filepath.Glob("../helm/testdata/values/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Proof that the dry run validates: values the schema lets through and the API server must
	// refuse.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("controller: {podLabels: {\"not a label!\": x}}\n"), 0o644); err != nil {
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
			refused := a.apply(t, ns, renderChart(t, helm, "nuncio", ns, tc.values...), true)
			for what, err := range refused {
				if !slices.Contains(tc.refused, what) {
					t.Errorf("%s: %v", what, err)
				}
			}
			for _, what := range tc.refused {
				if refused[what] == nil {
					t.Errorf("%s was accepted, want it refused", what)
				}
			}
		})
	}
}

// TestDeployManifestDryRun applies deploy/nuncio.yaml, the chart's plain twin, as
// TestHelmChartDryRun applies the chart.
func TestDeployManifestDryRun(t *testing.T) {
	env := Shared(t)
	cs := clientset(t, env)
	data, err := os.ReadFile("../../deploy/nuncio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := helmtest.Objects(data)
	if err != nil {
		t.Fatal(err)
	}
	// A dry run creates no namespace, and the manifests' objects live in this one.
	const ns = "nuncio"
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), Namespace(ns), metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for what, err := range newApplier(t, env).apply(t, ns, objs, true) {
		t.Errorf("%s: %v", what, err)
	}
}

// TestHelmChartInstall installs the chart for real (no kube-controller-manager runs, so no
// pods), then runs what its two Deployments would run, with their arguments: the controller as
// the chart's service account (impersonated, so only the chart's ClusterRole applies) and the
// gateway with the chart's bootstrap; an Ingress of the chart's class is then served through
// the gateway, its status written, and /ready answers on the gateway's health port.
func TestHelmChartInstall(t *testing.T) {
	helm := helmBinary(t)
	env := Shared(t)
	nuncio := nuncioBinary(t)
	cs := clientset(t, env)
	ctx := context.Background()
	ns := testNamespace(t, cs)

	ports, err := env.FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	xdsPort, healthPort, httpPort, gwHealthPort, adminPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	class := ns // cluster-scoped: one of its own, so that no other test's controller serves it
	values := filepath.Join(t.TempDir(), "values.yaml")
	err = os.WriteFile(values, fmt.Appendf(nil, `ingressClass: {name: %s, controllerName: nuncio.dev/%s}
controller: {xdsPort: %d, healthPort: %d, publishAddress: 192.0.2.100}
gateway: {httpPort: %d, healthPort: %d, adminPort: %d}
`, class, class, xdsPort, healthPort, httpPort, gwHealthPort, adminPort), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const release = "chart"
	objs := renderChart(t, helm, release, ns, values)
	for what, err := range newApplier(t, env).apply(t, ns, objs, false) {
		t.Errorf("%s: %v", what, err)
	}
	if t.Failed() {
		t.FailNow()
	}
	controller := deployment(t, objs, release+"-nuncio-controller")
	gateway := deployment(t, objs, release+"-nuncio-gateway")
	bootstrap := configMap(t, objs, release+"-nuncio-gateway").Data["bootstrap.yaml"]

	// The controller's identity is the chart's service account, with its ClusterRole only.
	kubeconfig, err := clientcmd.LoadFromFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range kubeconfig.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + ns + ":" + controller.Spec.Template.Spec.ServiceAccountName
	}
	dir := t.TempDir()
	saKubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, saKubeconfig); err != nil {
		t.Fatal(err)
	}
	// The Deployments' arguments, where a pod's differ from a process's in the test namespace:
	// the in-cluster credentials, the controller Service's name, the pod's name and the
	// ConfigMap's mount.
	cargs := podArgs(t, controller, map[string]string{"--xds-address=": fmt.Sprintf("127.0.0.1:%d", xdsPort)})
	cargs = append(cargs, "--kubeconfig", saKubeconfig)
	if err := os.WriteFile(filepath.Join(dir, "bootstrap.yaml"), []byte(bootstrap), 0o644); err != nil {
		t.Fatal(err)
	}
	gargs := podArgs(t, gateway, map[string]string{
		"-c=":    filepath.Join(dir, "bootstrap.yaml"),
		"--xds=": fmt.Sprintf("127.0.0.1:%d", xdsPort),
	})
	procs := []*Process{
		env.StartProcessT(t, "chart-controller", nuncio, cargs[1:]...),
		env.StartProcessT(t, "chart-gateway", nuncio, gargs[1:]...),
	}

	addr := "192.0.2.30"
	backend(t, env, "chart", net.JoinHostPort(addr, "8080"))
	if _, err := cs.CoreV1().Services(ns).Create(ctx, Service(ns, "app", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, EndpointSlice(ns, "app", "app-1", 8080, addr), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, Ingress(ns, "web", class,
		IngressRule{Host: "chart.example", Path: "/", Service: "app", Port: 80}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	client := env.HTTPClient()
	get := func(url, host string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, err.Error()
		}
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	eventually := func(what string, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			for _, p := range procs {
				if done, _ := p.Exited(); done {
					t.Fatal(p.exitError())
				}
			}
			good, last := ok()
			if good {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last %s", what, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	eventually("the Ingress served through the gateway", func() (bool, string) {
		code, body := get(fmt.Sprintf("http://127.0.0.1:%d/", httpPort), "chart.example")
		return code == http.StatusOK && body == "chart", fmt.Sprintf("%d %q", code, body)
	})
	eventually("gateway /ready on the health port", func() (bool, string) {
		code, body := get(fmt.Sprintf("http://127.0.0.1:%d/ready", gwHealthPort), "")
		return code == http.StatusOK && body == "LIVE", fmt.Sprintf("%d %q", code, body)
	})
	eventually("controller /readyz", func() (bool, string) {
		code, body := get(fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort), "")
		return code == http.StatusOK, fmt.Sprintf("%d %q", code, body)
	})
	// Writing status needs the ClusterRole's ingresses/status.
	eventually("Ingress status", func() (bool, string) {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		lb := ing.Status.LoadBalancer.Ingress
		return len(lb) == 1 && lb[0].IP == "192.0.2.100", fmt.Sprintf("%+v", lb)
	})
}

// podArgs is the Deployment's container command line, each argument starting with a key of
// replace given the key's value instead, and $(POD_NAME) set.
func podArgs(t *testing.T, d *appsv1.Deployment, replace map[string]string) []string {
	t.Helper()
	args := []string{"nuncio"}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		for k, v := range replace {
			if strings.HasPrefix(a, k) {
				a = k + v
			}
		}
		args = append(args, strings.ReplaceAll(a, "$(POD_NAME)", "gateway-0"))
	}
	return args
}

func deployment(t *testing.T, objs []*unstructured.Unstructured, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	fromRendered(t, objs, "Deployment", name, &d)
	return &d
}

func configMap(t *testing.T, objs []*unstructured.Unstructured, name string) *corev1.ConfigMap {
	t.Helper()
	var c corev1.ConfigMap
	fromRendered(t, objs, "ConfigMap", name, &c)
	return &c
}

func fromRendered(t *testing.T, objs []*unstructured.Unstructured, kind, name string, into any) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, into); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no %s %s in the chart's output", kind, name)
}
