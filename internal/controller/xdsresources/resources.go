// Package xdsresources holds a complete set of xDS resources (Resources) and checks it, and
// splits an Envoy bootstrap's static_resources into such a set (FromBootstrap): listeners whose
// route configurations are fetched over RDS, and static clusters whose endpoints are fetched
// over EDS, so that changing one route or one endpoint touches only the one resource that
// holds it. The controller's IR is encoded into Resources by package xdsgen.
package xdsresources

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
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
	return r.validate(nil)
}

// Validate is Resources.Validate skipping the messages that passed in the previous call: a
// message is never modified once handed on, so it is still valid. A route configuration's
// virtual hosts are checked one by one, so that an unchanged host of a changed table is not
// checked again.
func (gen *Generator) Validate(r Resources) error {
	gen.valid.begin()
	return r.validate(&gen.valid)
}

// validCache holds the messages that passed validation and the clusters each virtual host
// names, from the previous and the current validation.
type validCache struct {
	prev, cur map[proto.Message]bool
	refs      map[*routev3.VirtualHost][]string
	prevRefs  map[*routev3.VirtualHost][]string
}

func (c *validCache) begin() {
	c.prev, c.cur = c.cur, make(map[proto.Message]bool, len(c.cur))
	c.prevRefs, c.refs = c.refs, make(map[*routev3.VirtualHost][]string, len(c.refs))
}

// valid reports whether m passed in the previous or this validation, and keeps it for the next.
func (c *validCache) valid(m proto.Message) bool {
	if c == nil {
		return false
	}
	if c.prev[m] || c.cur[m] {
		c.cur[m] = true
		return true
	}
	return false
}

func (c *validCache) pass(m proto.Message) {
	if c != nil {
		c.cur[m] = true
	}
}

// clusterNames lists the clusters vh's routes name, with the route index of each.
func (c *validCache) clusterNames(vh *routev3.VirtualHost) []string {
	if c != nil {
		if n, ok := c.prevRefs[vh]; ok {
			c.refs[vh] = n
			return n
		}
		if n, ok := c.refs[vh]; ok {
			return n
		}
	}
	var names []string
	for j, rt := range vh.GetRoutes() {
		a := rt.GetRoute()
		add := func(n string) {
			if n != "" {
				names = append(names, strconv.Itoa(j), n)
			}
		}
		add(a.GetCluster())
		for _, wc := range a.GetWeightedClusters().GetClusters() {
			add(wc.GetName())
		}
	}
	if c != nil {
		c.refs[vh] = names
	}
	return names
}

func (r Resources) validate(vc *validCache) error {
	var errs []error
	check := func(kind, name string, m interface {
		proto.Message
		ValidateAll() error
	}) {
		if vc.valid(m) {
			return
		}
		if err := m.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, err))
			return
		}
		vc.pass(m)
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
		if vc == nil || vc.valid(rc) {
			check("route_configuration", rc.GetName(), rc)
			continue
		}
		// The table without its hosts, then each host: the rules of a route configuration
		// on its virtual_hosts field are only those of each element.
		shell := &routev3.RouteConfiguration{}
		src, dst := rc.ProtoReflect(), shell.ProtoReflect()
		src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Name() != "virtual_hosts" {
				dst.Set(fd, v)
			}
			return true
		})
		n := len(errs)
		if err := shell.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("route_configuration %q: %w", rc.GetName(), err))
		}
		for i, vh := range rc.GetVirtualHosts() {
			if vc.valid(vh) {
				continue
			}
			if err := vh.ValidateAll(); err != nil {
				errs = append(errs, fmt.Errorf("route_configuration %q: virtual_hosts[%d]: %w", rc.GetName(), i, err))
				continue
			}
			vc.pass(vh)
		}
		if len(errs) == n {
			vc.pass(rc)
		}
	}
	for _, c := range r.Clusters {
		unique("cluster", c.GetName())
		check("cluster", c.GetName(), c)
	}
	for _, e := range r.Endpoints {
		unique("cluster_load_assignment", e.GetClusterName())
		if vc.valid(e) {
			continue
		}
		n := len(errs)
		check("cluster_load_assignment", e.GetClusterName(), e)
		errs = append(errs, checkIPs(e)...)
		if len(errs) > n && vc != nil {
			delete(vc.cur, e)
		}
	}
	for _, s := range r.Secrets {
		unique("secret", s.GetName())
		check("secret", s.GetName(), s)
	}
	errs = append(errs, r.checkClusterRefs(vc)...)
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
		return nil, fmt.Errorf("xdsresources: %w", err)
	}
	return yaml.JSONToYAML(js)
}

// checkClusterRefs finds routes naming clusters the set does not have. Every data plane would
// reject such a set (keeping its last good one), so the controller rejects it first, where the
// author of the change sees the error.
func (r Resources) checkClusterRefs(vc *validCache) []error {
	clusters := make(map[string]bool, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = true
	}
	var errs []error
	for _, rc := range r.Routes {
		for i, vh := range rc.GetVirtualHosts() {
			names := vc.clusterNames(vh)
			for k := 0; k < len(names); k += 2 {
				if n := names[k+1]; !clusters[n] {
					errs = append(errs, fmt.Errorf("route_configuration %q: virtual_hosts[%d] (%s): routes[%s]: cluster %q not found",
						rc.GetName(), i, vh.GetName(), names[k], n))
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
