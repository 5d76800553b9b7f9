// Package xdsgen turns a translated configuration (an Envoy bootstrap's static_resources) into
// the xDS resources a management server serves: listeners whose route configurations are
// fetched over RDS, and static clusters whose endpoints are fetched over EDS, so that changing
// one route or one endpoint touches only the one resource that holds it.
package xdsgen

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// Resources is a complete set of xDS resources: what every data plane is sent. Each list is
// sorted by name and names are unique within a list. The messages are shared and must not be
// modified once the set is handed on.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret
}

// Len is the number of resources of all types.
func (r Resources) Len() int {
	return len(r.Listeners) + len(r.Routes) + len(r.Clusters) + len(r.Endpoints) + len(r.Secrets)
}

// sort orders every list by name, so that output and hashes do not depend on input order.
func (r *Resources) sort() {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
	slices.SortFunc(r.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

// Validate runs Envoy's proto validation rules over every resource and checks that names are
// unique per type. Errors name the resource.
func (r Resources) Validate() error {
	var errs []error
	check := func(kind, name string, m interface{ ValidateAll() error }) {
		if err := m.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, err))
		}
	}
	seen := map[string]bool{}
	unique := func(kind, name string) {
		if seen[kind+"\x00"+name] {
			errs = append(errs, fmt.Errorf("%s %q: duplicate name", kind, name))
		}
		seen[kind+"\x00"+name] = true
	}
	for _, l := range r.Listeners {
		unique("listener", l.GetName())
		check("listener", l.GetName(), l)
	}
	for _, rc := range r.Routes {
		unique("route_configuration", rc.GetName())
		check("route_configuration", rc.GetName(), rc)
	}
	for _, c := range r.Clusters {
		unique("cluster", c.GetName())
		check("cluster", c.GetName(), c)
	}
	for _, e := range r.Endpoints {
		unique("cluster_load_assignment", e.GetClusterName())
		check("cluster_load_assignment", e.GetClusterName(), e)
		errs = append(errs, checkIPs(e)...)
	}
	for _, s := range r.Secrets {
		unique("secret", s.GetName())
		check("secret", s.GetName(), s)
	}
	errs = append(errs, r.checkClusterRefs()...)
	return errors.Join(errs...)
}

// MarshalYAML renders the set as one YAML document with a list per resource type, each
// resource in the form Envoy's loader reads (envoyconfig.MarshalYAML). The output is stable,
// for golden files and for showing users what the controller serves.
func (r Resources) MarshalYAML() ([]byte, error) {
	doc := map[string][]json.RawMessage{}
	add := func(key string, m proto.Message) error {
		y, err := envoyconfig.MarshalYAML(m)
		if err != nil {
			return err
		}
		js, err := yaml.YAMLToJSON(y)
		if err != nil {
			return err
		}
		doc[key] = append(doc[key], js)
		return nil
	}
	for _, l := range r.Listeners {
		if err := add("listeners", l); err != nil {
			return nil, err
		}
	}
	for _, rc := range r.Routes {
		if err := add("route_configurations", rc); err != nil {
			return nil, err
		}
	}
	for _, c := range r.Clusters {
		if err := add("clusters", c); err != nil {
			return nil, err
		}
	}
	for _, e := range r.Endpoints {
		if err := add("cluster_load_assignments", e); err != nil {
			return nil, err
		}
	}
	for _, s := range r.Secrets {
		if err := add("secrets", s); err != nil {
			return nil, err
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("xdsgen: %w", err)
	}
	return yaml.JSONToYAML(js)
}

// checkClusterRefs finds routes naming clusters the set does not have. Every data plane would
// reject such a set (keeping its last good one), so the controller rejects it first, where the
// author of the change sees the error.
func (r Resources) checkClusterRefs() []error {
	clusters := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	var errs []error
	for _, rc := range r.Routes {
		for i, vh := range rc.GetVirtualHosts() {
			for j, rt := range vh.GetRoutes() {
				a := rt.GetRoute()
				names := []string{a.GetCluster()}
				for _, wc := range a.GetWeightedClusters().GetClusters() {
					names = append(names, wc.GetName())
				}
				for _, n := range names {
					if n != "" && !clusters[n] {
						errs = append(errs, fmt.Errorf("route_configuration %q: virtual_hosts[%d] (%s): routes[%d]: cluster %q not found",
							rc.GetName(), i, vh.GetName(), j, n))
					}
				}
			}
		}
	}
	return errs
}

// checkIPs finds endpoint addresses that are not IP literals. The assignments served come from
// STATIC clusters, whose endpoints Envoy requires to be IPs; every data plane would reject
// anything else.
func checkIPs(cla *endpointv3.ClusterLoadAssignment) []error {
	var errs []error
	for i, le := range cla.GetEndpoints() {
		for j, lb := range le.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				continue
			}
			if _, err := netip.ParseAddr(sa.GetAddress()); err != nil {
				errs = append(errs, fmt.Errorf("cluster_load_assignment %q: endpoints[%d].lb_endpoints[%d].endpoint.address.socket_address.address: %q is not an IP address (a STATIC cluster's endpoints must be; use STRICT_DNS for host names)",
					cla.GetClusterName(), i, j, sa.GetAddress()))
			}
		}
	}
	return errs
}
