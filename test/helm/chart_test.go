package helmtest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

// Cases are the value sets the chart is rendered with here and in test/k8s: the defaults, and
// each file of testdata/values.
type Case struct {
	Name   string
	Values string // a values file, or "" for the chart's defaults
}

func cases(t *testing.T) []Case {
	t.Helper()
	files, err := filepath.Glob("testdata/values/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cs := []Case{{Name: "default"}}
	for _, f := range files {
		cs = append(cs, Case{Name: strings.TrimSuffix(filepath.Base(f), ".yaml"), Values: f})
	}
	return cs
}

func helmBinary(t *testing.T) string {
	t.Helper()
	helm, err := Binary()
	if errors.Is(err, ErrNoHelm) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return helm
}

func render(t *testing.T, helm string, c Case) []byte {
	t.Helper()
	r := Release{Name: "nuncio", Namespace: "nuncio"}
	if c.Values != "" {
		r.ValuesFiles = []string{c.Values}
	}
	out, err := Template(helm, r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTemplate checks `helm template`'s output for each value set against a golden file.
func TestTemplate(t *testing.T) {
	helm := helmBinary(t)
	golden.Prune(t, "testdata/*.out.yaml")
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", c.Name+".out.yaml"), render(t, helm, c))
		})
	}
}

func TestLint(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			var files []string
			if c.Values != "" {
				files = []string{c.Values}
			}
			if out, err := Lint(helm, files...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// rendered is a manifest read strictly into the API types: a field the API does not have is an
// error, as it would be for `kubectl apply --validate=strict`.
type rendered struct {
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	policies     map[string]*networkingv1.NetworkPolicy
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	configMaps   map[string]*corev1.ConfigMap
	clusterRoles map[string]*rbacv1.ClusterRole
	kinds        map[string]int
}

func decode(t *testing.T, manifest []byte) *rendered {
	t.Helper()
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		policies: map[string]*networkingv1.NetworkPolicy{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, configMaps: map[string]*corev1.ConfigMap{},
		clusterRoles: map[string]*rbacv1.ClusterRole{}, kinds: map[string]int{},
	}
	objs, err := Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		doc, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		kind, name := u.GetKind(), u.GetName()
		var obj any
		switch kind {
		case "Deployment":
			obj = into(r.deployments, name)
		case "Service":
			obj = into(r.services, name)
		case "NetworkPolicy":
			obj = into(r.policies, name)
		case "PodDisruptionBudget":
			obj = into(r.pdbs, name)
		case "HorizontalPodAutoscaler":
			obj = into(r.hpas, name)
		case "ConfigMap":
			obj = into(r.configMaps, name)
		case "ClusterRole":
			obj = into(r.clusterRoles, name)
		case "ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "Namespace":
			obj = &corev1.Namespace{}
		case "ClusterRoleBinding":
			obj = &rbacv1.ClusterRoleBinding{}
		case "IngressClass":
			obj = &networkingv1.IngressClass{}
		case "ServiceMonitor":
			obj = &map[string]any{} // not an API type of client-go's; test/k8s checks it when the CRD is there
		default:
			t.Fatalf("unexpected kind %s %s", kind, name)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
		r.kinds[kind]++
	}
	return r
}

func into[T any](m map[string]*T, name string) *T {
	v := new(T)
	m[name] = v
	return v
}

// TestSecureDefaults checks, for every value set, what the chart promises whatever the values:
// non-root pods with the runtime's seccomp profile, read-only root filesystems, no capabilities,
// no privilege escalation, probes, and gateways without Kubernetes credentials.
func TestSecureDefaults(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			r := decode(t, render(t, helm, c))
			if len(r.deployments) != 2 {
				t.Fatalf("deployments = %d, want 2", len(r.deployments))
			}
			for name, d := range r.deployments {
				pod := d.Spec.Template.Spec
				psc := pod.SecurityContext
				if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
					t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and uid 65532", name, psc)
				}
				if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: want seccompProfile RuntimeDefault", name)
				}
				for _, ctr := range pod.Containers {
					sc := ctr.SecurityContext
					switch {
					case sc == nil:
						t.Errorf("%s/%s: no securityContext", name, ctr.Name)
					case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
						t.Errorf("%s/%s: root filesystem not read-only", name, ctr.Name)
					case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
						t.Errorf("%s/%s: privilege escalation allowed", name, ctr.Name)
					case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
						t.Errorf("%s/%s: capabilities %+v, want drop ALL", name, ctr.Name, sc.Capabilities)
					}
					if ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil {
						t.Errorf("%s/%s: want readiness and liveness probes", name, ctr.Name)
					}
					if ctr.ReadinessProbe != nil && ctr.ReadinessProbe.Exec != nil || ctr.LivenessProbe != nil && ctr.LivenessProbe.Exec != nil {
						t.Errorf("%s/%s: an exec probe needs a shell or a binary the image does not have", name, ctr.Name)
					}
					if !strings.HasPrefix(ctr.Image, "ghcr.io/nuncio-gw/nuncio") {
						t.Errorf("%s/%s: image %s, want deploy/Dockerfile's", name, ctr.Name, ctr.Image)
					}
				}
				if strings.HasSuffix(name, "-gateway") {
					if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
						t.Errorf("%s: gateway pods mount a service account token they do not need", name)
					}
					for _, a := range pod.Containers[0].Args {
						if strings.HasPrefix(a, "--admin=") && !strings.HasPrefix(a, "--admin=127.0.0.1:") {
							t.Errorf("%s: %s: the admin API must stay on loopback", name, a)
						}
					}
				}
			}
		})
	}
}

// TestRBAC checks the chart's ClusterRole grants what deploy/nuncio.yaml's does, which the
// Kubernetes provider's TestDeployManifests holds to what the provider uses.
func TestRBAC(t *testing.T) {
	helm := helmBinary(t)
	r := decode(t, render(t, helm, Case{Name: "default"}))
	role := r.clusterRoles["nuncio-controller"]
	if role == nil {
		t.Fatalf("no ClusterRole nuncio-controller: %v", r.kinds)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want := manifestClusterRole(t, filepath.Join(root, "deploy/nuncio.yaml"))
	got, _ := yaml.Marshal(role.Rules)
	wantRules, _ := yaml.Marshal(want.Rules)
	if string(got) != string(wantRules) {
		t.Errorf("chart rules:\n%s\ndeploy/nuncio.yaml rules:\n%s", got, wantRules)
	}
}

// TestValuesRefused checks that values.schema.json refuses what the chart cannot render
// sensibly, naming the value and the reason.
func TestValuesRefused(t *testing.T) {
	helm := helmBinary(t)
	tests := []struct {
		name    string
		values  string
		wantErr []string
	}{
		{name: "misspelt top-level key", values: "gatway: {replicas: 3}\n", wantErr: []string{"at ''", "'gatway' not allowed"}},
		{name: "misspelt nested key", values: "gateway: {replica: 3}\n", wantErr: []string{"at '/gateway'", "'replica' not allowed"}},
		{name: "service type", values: "gateway: {service: {type: External}}\n", wantErr: []string{"at '/gateway/service/type'", "must be one of"}},
		{name: "drain time not a duration", values: "gateway: {drainTime: 20}\n", wantErr: []string{"at '/gateway/drainTime'", "want string"}},
		{name: "port out of range", values: "controller: {xdsPort: 70000}\n", wantErr: []string{"at '/controller/xdsPort'"}},
		{name: "log level", values: "controller: {logLevel: verbose}\n", wantErr: []string{"at '/controller/logLevel'"}},
		{name: "digest", values: "image: {digest: latest}\n", wantErr: []string{"at '/image/digest'"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Template(helm, Release{Name: "nuncio", Namespace: "nuncio", ValuesFiles: []string{f}})
			if err == nil {
				t.Fatalf("values %q rendered, want them refused", tc.values)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestGatewayShutdown checks, for every value set, that a gateway pod is given the time its
// shutdown takes: the preStop sleep, then the drain, within the termination grace period.
func TestGatewayShutdown(t *testing.T) {
	helm := helmBinary(t)
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			r := decode(t, render(t, helm, c))
			var gw *appsv1.Deployment
			for name, d := range r.deployments {
				if strings.HasSuffix(name, "-gateway") {
					gw = d
				}
			}
			if gw == nil {
				t.Fatalf("no gateway Deployment: %v", r.kinds)
			}
			pod := gw.Spec.Template.Spec
			var drain time.Duration
			for _, a := range pod.Containers[0].Args {
				if v, ok := strings.CutPrefix(a, "--drain-time="); ok {
					d, err := time.ParseDuration(v)
					if err != nil {
						t.Fatal(err)
					}
					drain = d
				}
			}
			var sleep time.Duration
			if lc := pod.Containers[0].Lifecycle; lc != nil && lc.PreStop != nil && lc.PreStop.Sleep != nil {
				sleep = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
			}
			if sleep == 0 {
				t.Error("no preStop sleep: a load balancer may still send connections to closed listeners")
			}
			if pod.TerminationGracePeriodSeconds == nil {
				t.Fatal("no terminationGracePeriodSeconds")
			}
			if grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; grace <= sleep+drain {
				t.Errorf("terminationGracePeriodSeconds %v <= preStop sleep %v + drain %v: open connections are killed", grace, sleep, drain)
			}
		})
	}
}
