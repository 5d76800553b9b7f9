package ingress

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
)

// FuzzAnnotations sets one annotation to an arbitrary value on an Ingress with an arbitrary
// path: translation may refuse the Ingress, but must not panic, and what it accepts must encode
// to resources that validate (a failure there would keep every Ingress from being served).
func FuzzAnnotations(f *testing.F) {
	for _, a := range Annotations {
		f.Add(a.Key, "true", "/", "ImplementationSpecific")
	}
	f.Add("rewrite-target", "/$2", "/x(/|$)(.*)", "ImplementationSpecific")
	f.Add("canary-by-header-pattern", "(", "/", "Prefix")
	f.Add("upstream-hash-by", "$http_x_a", "/a/", "Exact")
	f.Add("permanent-redirect", "https://x.example/%zz", "/", "Prefix")
	f.Fuzz(func(t *testing.T, key, value, path, pathType string) {
		in := Input{Clusters: []Objects{{
			Cluster: "c",
			Services: []*corev1.Service{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
				Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
			}},
			EndpointSlices: []*discoveryv1.EndpointSlice{{
				ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-a", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
				Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
			}},
			Ingresses: []*networkingv1.Ingress{{
				ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: map[string]string{
					NginxPrefix + key: value, NginxPrefix + "canary": "false",
				}},
				Spec: networkingv1.IngressSpec{
					IngressClassName: ptr.To(DefaultIngressClass),
					Rules: []networkingv1.IngressRule{{Host: "a.example.com", IngressRuleValue: networkingv1.IngressRuleValue{
						HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
							Path: path, PathType: ptr.To(networkingv1.PathType(pathType)),
							Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
								Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80},
							}},
						}}},
					}}},
				},
			}},
		}}}
		res := Translate(in, Options{AllowUnenforced: true})
		if _, err := xdsgen.ToXDS(res.Config); err != nil {
			t.Fatalf("%s=%q path %q (%s): accepted but does not encode: %v", key, value, path, pathType, err)
		}
	})
}
