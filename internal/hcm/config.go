// Package hcm is the HTTP connection manager (envoy.filters.network.http_connection_manager):
// it runs the downstream codec (HTTP/1.1 or HTTP/2) on a connection, turns each request into a
// codec-neutral httpfilter.Stream, sanitises it as Envoy does (hop-by-hop headers,
// X-Forwarded-*, x-request-id, path normalisation, limits), selects the route and drives the
// HTTP filter chain, whose last filter (the router) produces the response.
package hcm

import (
	"fmt"
	"log/slog"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/codec/http1"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Config is one filter chain's compiled connection manager. It is immutable once built and
// shared by every connection accepted on that chain.
type Config struct {
	model  *model.HTTPConnectionManager
	routes *route.Slot
	chain  chain
	limits http1.Limits
	server string
	log    *slog.Logger
	bufLim int
	stats  connStats
	obs    observers // access logs and tracing

	// Health reports whether /healthcheck/fail is in force; nil means healthy. When failed,
	// responses carry Connection: close (HTTP/1.1) so load balancers move away, as Envoy's
	// draining does.
	health func() bool
}

// Options carries process-wide collaborators.
type Options struct {
	Logger *slog.Logger
	// HealthFailed, when set, reports whether the admin API has failed health checks.
	HealthFailed func() bool
	// BufferLimit bounds how much of a body filters may buffer (the listener's
	// per_connection_buffer_limit_bytes); 0 means Envoy's default of 1 MiB.
	BufferLimit uint32
	// Stats is where the http.<stat_prefix>.* stats go; stats.Default when nil.
	Stats *stats.Store
	// Clusters resolves cluster names for filters that call clusters themselves
	// (ClusterConfig); nil leaves them without clusters.
	Clusters func(name string) *cluster.Ref
}

// ClusterConfig is implemented by a filter Config that sends requests of its own to clusters
// named in its configuration or at run time (a wasm plugin's http_call, an authorization or
// rate-limit service). The connection manager calls WithClusters once, when it compiles its
// chain, with the resolver its route tables use, and runs the Config it returns.
type ClusterConfig interface {
	httpfilter.Config
	WithClusters(resolve func(name string) *cluster.Ref) httpfilter.Config
}

// DefaultServerName is the Server header sent when server_name is not configured.
const DefaultServerName = "nuncio"

// New compiles an HTTP connection manager. Streams read their route table from routes, which
// must hold a table compiled against the cluster manager the router uses.
func New(m *model.HTTPConnectionManager, routes *route.Slot, opts Options) (*Config, error) {
	if routes == nil || routes.Load() == nil {
		return nil, fmt.Errorf("hcm %q: no route table", m.StatPrefix)
	}
	c := &Config{model: m, routes: routes, server: m.ServerName, log: opts.Logger, health: opts.HealthFailed}
	if c.server == "" {
		c.server = DefaultServerName
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if opts.Stats == nil {
		opts.Stats = stats.Default
	}
	c.stats = newConnStats(c, opts.Stats, m.StatPrefix)
	c.bufLim = int(opts.BufferLimit)
	if c.bufLim == 0 {
		c.bufLim = 1 << 20
	}
	c.limits = http1.Limits{
		MaxHeaderBytes: int(m.MaxRequestHeadersBytes),
		MaxHeaders:     int(m.MaxHeadersCount),
	}
	var err error
	if c.chain, err = compileChain(m, c.stats.scope, opts.Clusters); err != nil {
		return nil, err
	}
	if c.obs, err = newObservers(m); err != nil {
		return nil, err
	}
	return c, nil
}

// Routes returns the route table in force for this manager.
func (c *Config) Routes() *route.Table { return c.routes.Load() }
