package xdsresources

import (
	"errors"
	"fmt"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// FromBootstrap splits the static resources of b into the resources a management server
// serves:
//
//   - a listener's inline route_config (in a filter chain's or an API listener's HTTP
//     connection manager) becomes a RouteConfiguration fetched over ADS by name (see route.go);
//   - a STATIC cluster's load_assignment becomes a ClusterLoadAssignment fetched over ADS and
//     the cluster becomes an EDS cluster (see cluster.go); DNS clusters keep theirs, since the
//     data plane resolves them;
//   - secrets are served as they are.
//
// b is not modified. The bootstrap's node, admin and dynamic_resources describe one process and
// are not part of what is served.
func FromBootstrap(b *bootstrapv3.Bootstrap) (Resources, error) {
	return new(Generator).FromBootstrap(b, nil)
}

// VirtualHosts are route tables' virtual hosts given apart from the bootstrap that uses them.
// A route_config whose only virtual host is named by Placeholder(key) stands for the virtual
// hosts under key. The file source decodes a listener's virtual hosts one by one, and keeps the
// unchanged ones' messages, instead of decoding them inside the listener's connection manager,
// which is a single serialized Any.
type VirtualHosts map[string][]*routev3.VirtualHost

// placeholderPrefix starts the name of a placeholder virtual host. A NUL keeps it apart from
// any name a configuration would use.
const placeholderPrefix = "\x00nuncio:virtual_hosts:"

// Placeholder is the name of the virtual host that stands for VirtualHosts[key].
func Placeholder(key string) string { return placeholderPrefix + key }

// ErrUnusedVirtualHosts is returned when a placeholder was not in a connection manager's
// route_config, where it is replaced: the caller must then decode the document without
// placeholders.
var ErrUnusedVirtualHosts = errors.New("xdsresources: placeholder virtual hosts outside a connection manager's route_config")

// Generator is FromBootstrap for successive versions of one configuration. It remembers its
// last output per input message: a listener, cluster or secret whose input is the same message
// as in the previous call (messages are never modified once handed over, so the same message
// means the same content) gives the same output messages, neither cloned nor re-marshalled
// again. Validate likewise skips the messages it checked in the previous call. It is not safe
// for concurrent use.
type Generator struct {
	listeners map[*listenerv3.Listener]*listenerOut
	clusters  map[*clusterv3.Cluster]clusterOut
	secrets   map[*tlsv3.Secret]*tlsv3.Secret
	valid     validCache
}

type listenerOut struct {
	l      *listenerv3.Listener
	routes []*routev3.RouteConfiguration // in the order the listener names them
	used   []string                      // the VirtualHosts keys it used
}

type clusterOut struct {
	c   *clusterv3.Cluster
	cla *endpointv3.ClusterLoadAssignment
}

// FromBootstrap is the package's FromBootstrap with vhosts standing for placeholders, reusing
// the previous call's output for unchanged inputs.
func (gen *Generator) FromBootstrap(b *bootstrapv3.Bootstrap, vhosts VirtualHosts) (Resources, error) {
	sr := b.GetStaticResources()
	listeners := make(map[*listenerv3.Listener]*listenerOut, len(sr.GetListeners()))
	used := map[string]bool{}
	// Each listener is generated on its own, so that an unchanged one is reused whole. Route
	// configuration names are then checked across listeners: where two listeners name the same
	// one (shared or clashing), the names depend on each other and everything is generated
	// together, as the single generator does it.
	names := map[string]bool{}
	clash := false
	for _, in := range sr.GetListeners() {
		out, ok := gen.listeners[in]
		if !ok {
			g := &generator{routes: map[string]*routev3.RouteConfiguration{}, vhosts: vhosts, used: map[string]bool{}}
			l := proto.Clone(in).(*listenerv3.Listener)
			if err := g.listener(l); err != nil {
				return Resources{}, err
			}
			out = &listenerOut{l: l}
			for _, name := range g.routeOrder {
				out.routes = append(out.routes, g.routes[name])
			}
			for k := range g.used {
				out.used = append(out.used, k)
			}
		}
		listeners[in] = out
		for _, k := range out.used {
			used[k] = true
		}
		for _, rc := range out.routes {
			if names[rc.GetName()] {
				clash = true
			}
			names[rc.GetName()] = true
		}
	}
	if len(used) != len(vhosts) {
		return Resources{}, ErrUnusedVirtualHosts
	}
	var r Resources
	if clash {
		g := &generator{routes: map[string]*routev3.RouteConfiguration{}, vhosts: vhosts, used: map[string]bool{}}
		for _, l := range sr.GetListeners() {
			l = proto.Clone(l).(*listenerv3.Listener)
			if err := g.listener(l); err != nil {
				return Resources{}, err
			}
			r.Listeners = append(r.Listeners, l)
		}
		for _, name := range g.routeOrder {
			r.Routes = append(r.Routes, g.routes[name])
		}
		listeners = nil
	} else {
		for _, in := range sr.GetListeners() {
			out := listeners[in]
			r.Listeners = append(r.Listeners, out.l)
			r.Routes = append(r.Routes, out.routes...)
		}
	}
	clusters := make(map[*clusterv3.Cluster]clusterOut, len(sr.GetClusters()))
	for _, in := range sr.GetClusters() {
		out, ok := gen.clusters[in]
		if !ok {
			out.c, out.cla = splitCluster(in)
		}
		clusters[in] = out
		r.Clusters = append(r.Clusters, out.c)
		if out.cla != nil {
			r.Endpoints = append(r.Endpoints, out.cla)
		}
	}
	secrets := make(map[*tlsv3.Secret]*tlsv3.Secret, len(sr.GetSecrets()))
	for _, in := range sr.GetSecrets() {
		out, ok := gen.secrets[in]
		if !ok {
			out = proto.Clone(in).(*tlsv3.Secret)
		}
		secrets[in] = out
		r.Secrets = append(r.Secrets, out)
	}
	r.sort()
	gen.listeners, gen.clusters, gen.secrets = listeners, clusters, secrets
	return r, nil
}

// generator holds what a translation has produced so far across listeners.
type generator struct {
	routes     map[string]*routev3.RouteConfiguration
	routeOrder []string // names in the order first seen
	vhosts     VirtualHosts
	used       map[string]bool // vhosts keys replaced
}

// chainKey names a filter chain within its listener for derived route names: its own name if
// it has one, else its position.
func chainKey(fc *listenerv3.FilterChain, i int) string {
	if fc.GetName() != "" {
		return fc.GetName()
	}
	return strconv.Itoa(i)
}

func (g *generator) listener(l *listenerv3.Listener) error {
	if api := l.GetApiListener(); api.GetApiListener() != nil {
		a, err := g.hcm(api.GetApiListener(), l.GetName(), "api_listener")
		if err != nil {
			return fmt.Errorf("listener %q: api_listener: %w", l.GetName(), err)
		}
		api.ApiListener = a
	}
	for i, fc := range l.GetFilterChains() {
		if err := g.chain(l.GetName(), chainKey(fc, i), fc); err != nil {
			return fmt.Errorf("listener %q: filter_chains[%d]: %w", l.GetName(), i, err)
		}
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		if err := g.chain(l.GetName(), "default", fc); err != nil {
			return fmt.Errorf("listener %q: default_filter_chain: %w", l.GetName(), err)
		}
	}
	return nil
}

func (g *generator) chain(listener, key string, fc *listenerv3.FilterChain) error {
	for i, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		if tc == nil || tc.GetTypeUrl() != hcmTypeURL {
			continue
		}
		a, err := g.hcm(tc, listener, key)
		if err != nil {
			return fmt.Errorf("filters[%d] (%s): %w", i, f.GetName(), err)
		}
		f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	}
	return nil
}
