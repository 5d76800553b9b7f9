package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nuncio-gw/nuncio/internal/controller/ingress"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	k8stest "github.com/nuncio-gw/nuncio/test/k8s"
)

// TestMulticlusterFailover watches two real API servers: a Service labelled multicluster in
// both gets one locality per cluster, and when one cluster's endpoints go the other's remain.
func TestMulticlusterFailover(t *testing.T) {
	east, west := k8stest.Shared(t), k8stest.Start(t)
	ctx := context.Background()
	ns := fmt.Sprintf("mc-%d", time.Now().UnixNano()%1e6)
	cls := "nuncio-" + ns
	addrs := map[*k8stest.Env]string{east: "192.0.2.10", west: "192.0.2.20"}
	for _, env := range []*k8stest.Env{east, west} {
		cs, err := env.Clientset()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, k8stest.Namespace(ns), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		svc := k8stest.Service(ns, "web", 80)
		svc.Labels = map[string]string{ingress.MulticlusterLabel: "true"}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, k8stest.EndpointSlice(ns, "web", "web-1", 8080, addrs[env]), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eastCS, _ := east.Clientset()
	if _, err := eastCS.NetworkingV1().IngressClasses().Create(ctx, k8stest.IngressClass(cls, ingress.DefaultControllerName), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ing := k8stest.Ingress(ns, "app", cls, k8stest.IngressRule{Host: ns + ".example.com", Path: "/", Service: "web", Port: 80})
	if _, err := eastCS.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	p, err := New(Options{Clusters: []Cluster{{Name: "east", Config: east.Config}, {Name: "west", Config: west.Config}}, Debounce: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	out := make(chan xdsresources.Resources, 16)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	cluster := ns + "/web/80@*"
	localities := func(r xdsresources.Resources) string {
		var ls []string
		for _, cla := range r.Endpoints {
			if cla.GetClusterName() != cluster {
				continue
			}
			for _, le := range cla.GetEndpoints() {
				var eps []string
				for _, lb := range le.GetLbEndpoints() {
					eps = append(eps, lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
				}
				ls = append(ls, le.GetLocality().GetZone()+"="+strings.Join(eps, "+"))
			}
		}
		return strings.Join(ls, ",")
	}
	await(t, out, "both clusters' endpoints", func(r xdsresources.Resources) bool {
		return localities(r) == "east=192.0.2.10,west=192.0.2.20"
	})
	westCS, _ := west.Clientset()
	if err := westCS.DiscoveryV1().EndpointSlices(ns).Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await(t, out, "west's endpoints gone", func(r xdsresources.Resources) bool {
		return localities(r) == "east=192.0.2.10,west="
	})
}
