// Package ingress translates Kubernetes Ingress objects, with their ingress-nginx annotations,
// into the controller's IR and from there into xDS resources. Translation is a pure function of
// the objects and the options: the Kubernetes provider lists what its informers hold and calls
// Translate; tests feed YAML files.
//
// A problem with one Ingress (a refused annotation, a value that does not parse, a regex RE2
// does not accept) drops that Ingress only, and is reported as a Problem for the provider to
// turn into an Event on the Ingress and a log line.
package ingress

import (
	"bytes"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Objects are the objects of one Kubernetes cluster that translation reads.
type Objects struct {
	// Cluster names the Kubernetes cluster: the locality zone of its endpoints and part of the
	// names of its clusters and routes.
	Cluster        string
	IngressClasses []*networkingv1.IngressClass
	Ingresses      []*networkingv1.Ingress
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret
	// ConfigMaps are the ones annotations may reference (custom-headers); the global options
	// are Options.ConfigMap.
	ConfigMaps []*corev1.ConfigMap
}

// Input is what translation reads: the objects of every cluster, the first cluster's global
// ConfigMap taking effect.
type Input struct {
	Clusters []Objects
	// ConfigMap holds global options (ingress-nginx's controller ConfigMap keys that Nuncio
	// reads); nil for the defaults.
	ConfigMap *corev1.ConfigMap
}

// ClusterAnnotation assigns an object of a YAML test case to a cluster (ReadObjects).
const ClusterAnnotation = "test.nuncio.dev/cluster"

// DefaultCluster is the cluster name of objects that do not say.
const DefaultCluster = "local"

// ReadObjects reads a multi-document YAML stream of Kubernetes objects into an Input, for
// golden tests and `nuncio translate`. An object goes to the cluster its ClusterAnnotation
// names, else DefaultCluster; clusters keep the order they first appear in. A ConfigMap named
// by globalConfigMap ("namespace/name", may be empty) becomes Input.ConfigMap. Kinds other
// than the ones translation reads are returned as an error.
func ReadObjects(data []byte, globalConfigMap string) (Input, error) {
	var in Input
	idx := map[string]int{}
	cluster := func(m *metav1.ObjectMeta) *Objects {
		name := m.Annotations[ClusterAnnotation]
		if name == "" {
			name = DefaultCluster
		}
		i, ok := idx[name]
		if !ok {
			i = len(in.Clusters)
			idx[name] = i
			in.Clusters = append(in.Clusters, Objects{Cluster: name})
		}
		return &in.Clusters[i]
	}
	for i, doc := range splitDocuments(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return Input{}, fmt.Errorf("document %d: %w", i, err)
		}
		if tm.Kind == "" {
			continue
		}
		strict := func(v any) error {
			if err := yaml.UnmarshalStrict(doc, v); err != nil {
				return fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
			}
			return nil
		}
		switch tm.Kind {
		case "IngressClass":
			o := &networkingv1.IngressClass{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			c := cluster(&o.ObjectMeta)
			c.IngressClasses = append(c.IngressClasses, o)
		case "Ingress":
			o := &networkingv1.Ingress{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			c := cluster(&o.ObjectMeta)
			c.Ingresses = append(c.Ingresses, o)
		case "Service":
			o := &corev1.Service{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			c := cluster(&o.ObjectMeta)
			c.Services = append(c.Services, o)
		case "EndpointSlice":
			o := &discoveryv1.EndpointSlice{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			c := cluster(&o.ObjectMeta)
			c.EndpointSlices = append(c.EndpointSlices, o)
		case "Secret":
			o := &corev1.Secret{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			// stringData is what people write in test files; the API server moves it to data.
			for k, v := range o.StringData {
				if o.Data == nil {
					o.Data = map[string][]byte{}
				}
				o.Data[k] = []byte(v)
			}
			o.StringData = nil
			c := cluster(&o.ObjectMeta)
			c.Secrets = append(c.Secrets, o)
		case "ConfigMap":
			o := &corev1.ConfigMap{}
			if err := strict(o); err != nil {
				return Input{}, err
			}
			if globalConfigMap != "" && o.Namespace+"/"+o.Name == globalConfigMap && in.ConfigMap == nil {
				in.ConfigMap = o
				continue
			}
			c := cluster(&o.ObjectMeta)
			c.ConfigMaps = append(c.ConfigMaps, o)
		default:
			return Input{}, fmt.Errorf("document %d: kind %s is not read by the Ingress translator", i, tm.Kind)
		}
	}
	return in, nil
}

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(data, []byte("\n---")) {
		// A separator line may carry a comment ("--- # b").
		if i := bytes.IndexByte(d, '\n'); i >= 0 && strings.TrimSpace(string(d[:i])) != "" && strings.HasPrefix(strings.TrimSpace(string(d[:i])), "#") {
			d = d[i:]
		}
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}
