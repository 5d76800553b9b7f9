package xdsgen

import (
	"cmp"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A feature is one policy's encoding: the hooks it needs, each nil when unused. A feature
// lives in its own file and registers itself from init, so that adding a policy is one IR
// type, one file here, and one line in each front end that offers it.
type feature struct {
	// name is the feature's name in the table, for panics and docs.
	name string
	// order places the feature among the others: its network filters, connection manager
	// settings and HTTP filters come in ascending order (the router is always last).
	order int
	// networkFilters are put before the HTTP connection manager in each chain of l.
	networkFilters func(l *ir.Listener) []*listenerv3.Filter
	// hcm patches l's connection manager.
	hcm func(h *hcmv3.HttpConnectionManager, l *ir.Listener)
	// httpFilters are installed in l's connection manager, before the router; usually only
	// when some route of l uses the feature.
	httpFilters func(l *ir.Listener) []*hcmv3.HttpFilter
	// route patches a route: headers, typed_per_filter_config. It is called for every route
	// with an action of its own (not for the https redirect of an HTTPSRedirect route).
	route func(out *routev3.Route, r *ir.Route)
	// routeAction patches a forwarding route's action: retries, hashing, mirrors.
	routeAction func(a *routev3.RouteAction, r *ir.Route)
	// cluster patches a cluster: health checks, outlier detection, circuit breakers.
	cluster func(out *clusterv3.Cluster, c *ir.Cluster)
}

// features is the table, in order.
var features []*feature

// register adds f to the table. Two features with one name are a programming error.
func register(f *feature) {
	for _, g := range features {
		if g.name == f.name {
			panic("xdsgen: feature " + f.name + " registered twice")
		}
	}
	features = append(features, f)
	slices.SortStableFunc(features, func(a, b *feature) int { return cmp.Compare(a.order, b.order) })
}

// Feature orders, by convention: 1–99 network level (network filters, connection manager
// settings), 100–199 HTTP filters in the order a request meets them (faults, access control,
// rate limits, CORS, buffering), 200–299 route patches, 300–399 cluster patches.

// usedBy reports whether some route of l satisfies uses.
func usedBy(l *ir.Listener, uses func(*ir.Route) bool) bool {
	found := false
	l.Routes(func(r *ir.Route) { found = found || uses(r) })
	return found
}

// perFilter sets a route's typed_per_filter_config for the filter name.
func perFilter(out *routev3.Route, name string, cfg *anypb.Any) {
	if out.TypedPerFilterConfig == nil {
		out.TypedPerFilterConfig = map[string]*anypb.Any{}
	}
	out.TypedPerFilterConfig[name] = cfg
}

// optionalFilter is a filter installed disabled and optional: a data plane that has it runs
// it on the routes that enable it (enableOptional), one that lacks it skips it instead of
// rejecting the listener. The Ingress translator uses these for policies the data plane may
// not enforce.
func optionalFilter(name string, m proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(m)},
		IsOptional: true, Disabled: true}
}

// disabledFilter is a filter installed disabled: it runs only on the routes that enable it
// (enableFilter). Unlike optionalFilter, a data plane without it rejects the listener, so a
// policy it carries is never silently dropped.
func disabledFilter(name string, m proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(m)}, Disabled: true}
}

// enableFilter enables a disabledFilter on a route with its per-route config.
func enableFilter(out *routev3.Route, name string, cfg proto.Message) {
	perFilter(out, name, typed(&routev3.FilterConfig{Config: typed(cfg)}))
}

// enableOptional enables an optional filter on a route with its per-route config.
func enableOptional(out *routev3.Route, name string, cfg proto.Message) {
	perFilter(out, name, typed(&routev3.FilterConfig{Config: typed(cfg), IsOptional: true}))
}
