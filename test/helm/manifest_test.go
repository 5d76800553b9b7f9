package helmtest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// TestManifestMatchesChart holds deploy/nuncio.yaml to the chart's defaults (release nuncio in
// namespace nuncio) where they must agree: the gateway's bootstrap, each container's arguments,
// ports, probes and security settings, the pods' security settings, and the specs of the
// NetworkPolicies and PodDisruptionBudgets (less the chart's app.kubernetes.io/instance label,
// which the plain manifests do not have).
func TestManifestMatchesChart(t *testing.T) {
	helm := helmBinary(t)
	chart := decode(t, render(t, helm, Case{Name: "default"}))
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "deploy/nuncio.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	plain := decode(t, data)

	same := func(what string, a, b any) {
		t.Helper()
		ja, jb := canonical(t, a), canonical(t, b)
		if ja != jb {
			t.Errorf("%s differs:\nchart:              %s\ndeploy/nuncio.yaml: %s", what, ja, jb)
		}
	}
	same("gateway bootstrap", chart.configMaps["nuncio-gateway"].Data, plain.configMaps["nuncio-gateway"].Data)
	for _, name := range []string{"nuncio-controller", "nuncio-gateway"} {
		cd, pd := chart.deployments[name], plain.deployments[name]
		if cd == nil || pd == nil {
			t.Fatalf("Deployment %s: in the chart %v, in deploy/nuncio.yaml %v", name, cd != nil, pd != nil)
		}
		same(name+" pod securityContext", cd.Spec.Template.Spec.SecurityContext, pd.Spec.Template.Spec.SecurityContext)
		cc, pc := cd.Spec.Template.Spec.Containers[0], pd.Spec.Template.Spec.Containers[0]
		same(name+" args", cc.Args, pc.Args)
		same(name+" ports", cc.Ports, pc.Ports)
		same(name+" readinessProbe", cc.ReadinessProbe, pc.ReadinessProbe)
		same(name+" livenessProbe", cc.LivenessProbe, pc.LivenessProbe)
		same(name+" securityContext", cc.SecurityContext, pc.SecurityContext)
		same(name+" volumeMounts", cc.VolumeMounts, pc.VolumeMounts)
		same(name+" lifecycle", cc.Lifecycle, pc.Lifecycle)
		same(name+" terminationGracePeriodSeconds", cd.Spec.Template.Spec.TerminationGracePeriodSeconds, pd.Spec.Template.Spec.TerminationGracePeriodSeconds)
		if chart.policies[name] == nil || plain.policies[name] == nil {
			t.Errorf("NetworkPolicy %s: in the chart %v, in deploy/nuncio.yaml %v", name, chart.policies[name] != nil, plain.policies[name] != nil)
		} else {
			same(name+" NetworkPolicy", chart.policies[name].Spec, plain.policies[name].Spec)
		}
		if chart.pdbs[name] == nil || plain.pdbs[name] == nil {
			t.Errorf("PodDisruptionBudget %s: in the chart %v, in deploy/nuncio.yaml %v", name, chart.pdbs[name] != nil, plain.pdbs[name] != nil)
		} else {
			same(name+" PodDisruptionBudget", chart.pdbs[name].Spec, plain.pdbs[name].Spec)
		}
	}
}

// canonical is v as JSON with every app.kubernetes.io/instance key removed.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(stripInstance(generic))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stripInstance(v any) any {
	switch v := v.(type) {
	case map[string]any:
		delete(v, "app.kubernetes.io/instance")
		for k, x := range v {
			v[k] = stripInstance(x)
		}
	case []any:
		for i, x := range v {
			v[i] = stripInstance(x)
		}
	}
	return v
}

// manifestClusterRole reads the ClusterRole out of a multi-document manifest.
func manifestClusterRole(t *testing.T, path string) *rbacv1.ClusterRole {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range SplitDocuments(data) {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal(doc, &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind == "ClusterRole" {
			return &role
		}
	}
	t.Fatalf("%s: no ClusterRole", path)
	return nil
}
