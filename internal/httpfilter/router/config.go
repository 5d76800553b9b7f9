// Package router is the terminal HTTP filter: it forwards a request to the cluster its route
// names and streams the response back (envoy.filters.http.router).
package router

import (
	"fmt"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.router"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

func init() { httpfilter.Register(Factory{}) }

// Factory builds router configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL}, Terminal: true,
		Status: "stable", Posture: "robust_to_untrusted_downstream_and_upstream",
	}
}

// Config is the compiled router configuration.
type Config struct {
	// SuppressEnvoyHeaders stops x-envoy-* response headers such as
	// x-envoy-upstream-service-time.
	SuppressEnvoyHeaders bool

	stats *routerStats // under the connection manager's scope; nil outside one (tests)
}

// Phases implements httpfilter.Config. The router makes the response itself, so it takes no
// part in the response phases.
func (c *Config) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody | httpfilter.PhaseRequestTrailers | httpfilter.PhaseStreamDone
}

// WithScope implements httpfilter.ScopedConfig: the router's no_route, no_cluster, … counters
// live under its connection manager's http.<stat_prefix>. scope.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	out := *c
	out.stats = newRouterStats(sc)
	return &out
}

// entry is the stream's route as the route table compiled it (nil when none matched).
func entry(s *httpfilter.Stream) *route.Entry {
	e, _ := s.Route.(*route.Entry)
	return e
}

// NewConfig implements httpfilter.Factory. Fields the router does not implement are rejected
// rather than silently ignored.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	r, ok := m.(*routerv3.Router)
	if !ok {
		return nil, fmt.Errorf("router: unexpected config type %T", m)
	}
	switch {
	case len(r.GetUpstreamHttpFilters()) > 0:
		return nil, fmt.Errorf("router: upstream_http_filters: not supported")
	case r.GetStartChildSpan():
		return nil, fmt.Errorf("router: start_child_span: not supported")
	case len(r.GetUpstreamLog()) > 0:
		return nil, fmt.Errorf("router: upstream_log: not supported")
	}
	return &Config{SuppressEnvoyHeaders: r.GetSuppressEnvoyHeaders()}, nil
}

// NewOverride implements httpfilter.Factory; the router takes no per-route config.
func (Factory) NewOverride(proto.Message) (httpfilter.Config, error) {
	return nil, fmt.Errorf("router: typed_per_filter_config is not supported")
}

// upgradeWebSocket reports whether the connection manager enabled WebSocket upgrades.
func (c *Config) upgradeWebSocket(s *httpfilter.Stream) bool { return s.AllowWebSocket }
