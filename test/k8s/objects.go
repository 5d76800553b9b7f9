package k8stest

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Service returns a ClusterIP Service named name with one port, "http", from port to the named
// target port "http" (resolved through the EndpointSlice, as for pods).
func Service(namespace, name string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{
				Name: "http", Port: port, Protocol: corev1.ProtocolTCP,
				TargetPort: intstr.FromString("http"),
			}},
		},
	}
}

// EndpointSlice returns the slice of Service service holding addrs, all ready, on port "http"
// at targetPort.
func EndpointSlice(namespace, service, name string, targetPort int32, addrs ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To("http"), Port: ptr.To(targetPort), Protocol: ptr.To(corev1.ProtocolTCP),
		}},
	}
	SetEndpoints(s, addrs...)
	return s
}

// SetEndpoints replaces the slice's endpoints with addrs, all ready.
func SetEndpoints(s *discoveryv1.EndpointSlice, addrs ...string) {
	s.Endpoints = nil
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)},
		})
	}
}

// IngressRule is one host and path of an Ingress, sent to a Service's port.
type IngressRule struct {
	Host, Path, Service string
	Port                int32
	PathType            networkingv1.PathType // Prefix when empty
}

// Ingress returns an Ingress of class class with rules.
func Ingress(namespace, name, class string, rules ...IngressRule) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       networkingv1.IngressSpec{IngressClassName: ptr.To(class)},
	}
	SetRules(ing, rules...)
	return ing
}

// SetRules replaces the Ingress's rules.
func SetRules(ing *networkingv1.Ingress, rules ...IngressRule) {
	ing.Spec.Rules = nil
	for _, r := range rules {
		pt := r.PathType
		if pt == "" {
			pt = networkingv1.PathTypePrefix
		}
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{
			Host: r.Host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{
					Path: r.Path, PathType: ptr.To(pt),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
						Name: r.Service, Port: networkingv1.ServiceBackendPort{Number: r.Port},
					}},
				}},
			}},
		})
	}
}

// IngressClass returns the IngressClass name handled by controller.
func IngressClass(name, controller string) *networkingv1.IngressClass {
	return &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       networkingv1.IngressClassSpec{Controller: controller},
	}
}

// Namespace returns a namespace object.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
