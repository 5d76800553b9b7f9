package kubernetes

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/nuncio-gw/nuncio/internal/controller/ingress"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	k8stest "github.com/nuncio-gw/nuncio/test/k8s"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

// harness starts the provider against the shared real API server and returns a clientset and
// the provider's output.
func harness(t *testing.T, opts Options) (kubernetes.Interface, string, <-chan xdsresources.Resources) {
	t.Helper()
	env := k8stest.Shared(t)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano()%1e6)
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), k8stest.Namespace(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts.Clusters = []Cluster{{Name: "test", Config: env.Config}}
	opts.Debounce = 10 * time.Millisecond
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan xdsresources.Resources, 16)
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return cs, ns, out
}

// await reads sets until one satisfies ok.
func await(t *testing.T, out <-chan xdsresources.Resources, what string, ok func(xdsresources.Resources) bool) xdsresources.Resources {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case r := <-out:
			if ok(r) {
				return r
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func endpointsOf(r xdsresources.Resources, cluster string) []string {
	var out []string
	for _, cla := range r.Endpoints {
		if cla.GetClusterName() != cluster {
			continue
		}
		for _, le := range cla.GetEndpoints() {
			for _, lb := range le.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
	}
	return out
}

func hasDomain(r xdsresources.Resources, host string) bool {
	for _, rc := range r.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if d == host {
					return true
				}
			}
		}
	}
	return false
}

// TestFollowsObjects creates, changes and deletes an Ingress and its Service's EndpointSlice in
// a real API server and checks that the resources follow, and that the Ingress's status gets
// the gateway's address.
func TestFollowsObjects(t *testing.T) {
	cs, ns, out := harness(t, Options{PublishAddress: "192.0.2.1"})
	ctx := context.Background()
	cls := "nuncio-" + ns
	if _, err := cs.NetworkingV1().IngressClasses().Create(ctx, k8stest.IngressClass(cls, ingress.DefaultControllerName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, k8stest.Service(ns, "web", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	slice := k8stest.EndpointSlice(ns, "web", "web-1", 8080, "192.0.2.10")
	slice, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := ns + ".example.com"
	ing := k8stest.Ingress(ns, "app", cls, k8stest.IngressRule{Host: host, Path: "/", Service: "web", Port: 80})
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster := ns + "/web/80@test"
	await(t, out, "the Ingress's route and endpoint", func(r xdsresources.Resources) bool {
		eps := endpointsOf(r, cluster)
		return hasDomain(r, host) && len(eps) == 1 && eps[0] == "192.0.2.10:8080"
	})

	k8stest.SetEndpoints(slice, "192.0.2.11", "192.0.2.12")
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, out, "the new endpoints", func(r xdsresources.Resources) bool {
		return strings.Join(endpointsOf(r, cluster), ",") == "192.0.2.11:8080,192.0.2.12:8080"
	})

	// The status is written after the set is sent; poll the API server for it.
	wait.NoError(t, "the Ingress status", func() error {
		got, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lb := got.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "192.0.2.1" {
			return fmt.Errorf("status.loadBalancer = %+v, want 192.0.2.1", lb)
		}
		return nil
	})

	if err := cs.NetworkingV1().Ingresses(ns).Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, out, "the Ingress's removal", func(r xdsresources.Resources) bool { return !hasDomain(r, host) })
}

// TestRefusedIngressEvent checks that a refused annotation drops only its Ingress and is
// reported as an Event on it.
func TestRefusedIngressEvent(t *testing.T) {
	cs, ns, out := harness(t, Options{})
	ctx := context.Background()
	cls := "nuncio-" + ns
	if _, err := cs.NetworkingV1().IngressClasses().Create(ctx, k8stest.IngressClass(cls, ingress.DefaultControllerName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, k8stest.Service(ns, "web", 80), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	good := k8stest.Ingress(ns, "good", cls, k8stest.IngressRule{Host: "good." + ns, Path: "/", Service: "web", Port: 80})
	bad := k8stest.Ingress(ns, "bad", cls, k8stest.IngressRule{Host: "bad." + ns, Path: "/", Service: "web", Port: 80})
	bad.Annotations = map[string]string{ingress.NginxPrefix + "configuration-snippet": "return 200;"}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, good, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, out, "the good Ingress without the bad one", func(r xdsresources.Resources) bool {
		return hasDomain(r, "good."+ns) && !hasDomain(r, "bad."+ns)
	})
	wait.NoError(t, "an AnnotationRefused Event on the Ingress", func() error {
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "bad").String(),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Reason == "AnnotationRefused" && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "configuration-snippet") {
				return nil
			}
		}
		return fmt.Errorf("events: %+v", evs.Items)
	})
}
