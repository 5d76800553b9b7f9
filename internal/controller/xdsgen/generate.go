package xdsgen

import (
	"fmt"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
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
	sr := b.GetStaticResources()
	g := &generator{routes: map[string]*routev3.RouteConfiguration{}}
	var r Resources
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
	for _, c := range sr.GetClusters() {
		c, cla := splitCluster(c)
		r.Clusters = append(r.Clusters, c)
		if cla != nil {
			r.Endpoints = append(r.Endpoints, cla)
		}
	}
	for _, s := range sr.GetSecrets() {
		r.Secrets = append(r.Secrets, proto.Clone(s).(*tlsv3.Secret))
	}
	r.sort()
	return r, nil
}

// generator holds what a translation has produced so far across listeners.
type generator struct {
	routes     map[string]*routev3.RouteConfiguration
	routeOrder []string // names in the order first seen
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
