package ingress

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
)

// scaleInput is the scale: n Ingresses (one host and two paths each) over n/5 Services
// with three endpoints each.
func scaleInput(n int) Input {
	o := Objects{Cluster: "c"}
	svcs := n / 5
	for i := range svcs {
		name := fmt.Sprintf("svc-%d", i)
		o.Services = append(o.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: name + "-a", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		}
		for j := range 3 {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i/250, i%250, j+1)}})
		}
		o.EndpointSlices = append(o.EndpointSlices, es)
	}
	for i := range n {
		backend := func(s int) networkingv1.IngressBackend {
			return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: fmt.Sprintf("svc-%d", s%svcs), Port: networkingv1.ServiceBackendPort{Number: 80},
			}}
		}
		o.Ingresses = append(o.Ingresses, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("ing-%d", i),
				Annotations: map[string]string{NginxPrefix + "proxy-read-timeout": "30"}},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To(DefaultIngressClass),
				Rules: []networkingv1.IngressRule{{Host: fmt.Sprintf("h%d.example.com", i), IngressRuleValue: networkingv1.IngressRuleValue{
					HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
						{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend(i)},
						{Path: "/api", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend(i + 1)},
					}},
				}}},
			},
		})
	}
	return Input{Clusters: []Objects{o}}
}

// BenchmarkTranslate10k is one full translation at 10,000 Ingresses over 2,000 Services: what
// every change costs the controller.
func BenchmarkTranslate10k(b *testing.B) {
	in := scaleInput(10000)
	b.ReportAllocs()
	for b.Loop() {
		res := Translate(in, Options{})
		if _, err := xdsgen.ToXDS(res.Config); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslateOnly10k(b *testing.B) {
	in := scaleInput(10000)
	b.ReportAllocs()
	for b.Loop() {
		Translate(in, Options{})
	}
}

// BenchmarkEncodeIncremental10k is the encode step of one change at 10,000 Ingresses: one
// Ingress's host changed, encoded reusing the previous encoding's unchanged resources.
func BenchmarkEncodeIncremental10k(b *testing.B) {
	in := scaleInput(10000)
	var enc xdsgen.Encoder
	if _, err := enc.ToXDS(Translate(in, Options{}).Config); err != nil {
		b.Fatal(err)
	}
	ing := in.Clusters[0].Ingresses[0]
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		ing.Spec.Rules[0].Host = fmt.Sprintf("changed-%d.example.com", n)
		c := Translate(in, Options{}).Config
		b.StartTimer()
		if _, err := enc.ToXDS(c); err != nil {
			b.Fatal(err)
		}
	}
}
