package kubernetes

import (
	"bytes"
	"os"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployManifests reads deploy/nuncio.yaml strictly into the API types, and checks that the
// controller's ClusterRole grants what the provider does: list and watch its informers' kinds,
// update Ingress status, record Events; and nothing else.
func TestDeployManifests(t *testing.T) {
	data, err := os.ReadFile("../../../../deploy/nuncio.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role *rbacv1.ClusterRole
	kinds := map[string]int{}
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatal(err)
		}
		var obj any
		switch tm.Kind {
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "ClusterRole":
			role = &rbacv1.ClusterRole{}
			obj = role
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "IngressClass":
			obj = &networkingv1.IngressClass{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "Service":
			obj = &corev1.Service{}
		case "NetworkPolicy":
			obj = &networkingv1.NetworkPolicy{}
		case "PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			t.Fatalf("unexpected kind %q", tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s: %v", tm.Kind, err)
		}
		kinds[tm.Kind]++
	}
	if kinds["Deployment"] != 2 || kinds["Service"] != 2 || role == nil {
		t.Fatalf("kinds = %v", kinds)
	}
	want := map[string][]string{
		"/services": {"list", "watch"}, "/secrets": {"list", "watch"}, "/configmaps": {"list", "watch"},
		"discovery.k8s.io/endpointslices": {"list", "watch"},
		"networking.k8s.io/ingresses":     {"list", "watch"}, "networking.k8s.io/ingressclasses": {"list", "watch"},
		"networking.k8s.io/ingresses/status": {"update"},
		"/events":                            {"create", "patch"},
	}
	got := map[string][]string{}
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				got[g+"/"+res] = append(got[g+"/"+res], r.Verbs...)
			}
		}
	}
	for k, v := range want {
		g := got[k]
		slices.Sort(g)
		if !slices.Equal(g, v) {
			t.Errorf("ClusterRole %s: verbs %v, want %v", k, g, v)
		}
		delete(got, k)
	}
	if len(got) > 0 {
		t.Errorf("ClusterRole grants more than the controller uses: %v", got)
	}
}
