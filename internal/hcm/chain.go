package hcm

import (
	"fmt"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// chain is a connection manager's compiled HTTP filter chain. It is built once per
// configuration: each filter's phases are read then, into one slice per phase, so that a
// request runs each phase over exactly the filters taking part in it, with no type assertion.
type chain struct {
	filters []chainFilter

	// Positions in filters, ascending; response phases walk them backwards.
	reqHeaders, reqBody, reqTrailers    []int
	respHeaders, respBody, respTrailers []int
	done                                []int
}

type chainFilter struct {
	name string
	// slot indexes per-route overrides (route.FilterSlot): no name lookup per request.
	slot int
	cfg  httpfilter.Config
	// disabled filters run only on routes whose typed_per_filter_config enables them.
	disabled bool
}

// compileChain builds the chain of m's filters. Configs with stats under the connection
// manager's scope get it now, and those that call clusters get the resolver.
func compileChain(m *model.HTTPConnectionManager, sc *stats.Scope, clusters func(string) *cluster.Ref) (chain, error) {
	var c chain
	if len(m.HTTPFilters) == 0 {
		return c, fmt.Errorf("hcm %q: http_filters: the router must be the last filter", m.StatPrefix)
	}
	for i, f := range m.HTTPFilters {
		cfg, ok := f.Config.(httpfilter.Config)
		if !ok {
			return c, fmt.Errorf("hcm %q: http_filters[%d] %q: not a compiled filter config (%T)", m.StatPrefix, i, f.Name, f.Config)
		}
		if scoped, ok := cfg.(httpfilter.ScopedConfig); ok {
			cfg = scoped.WithScope(sc)
		}
		if cc, ok := cfg.(ClusterConfig); ok && clusters != nil {
			cfg = cc.WithClusters(clusters)
		}
		pos := len(c.filters)
		c.filters = append(c.filters, chainFilter{name: f.Name, slot: route.FilterSlot(f.Name), cfg: cfg, disabled: f.Disabled})
		ph := cfg.Phases()
		for _, p := range []struct {
			phase httpfilter.Phases
			list  *[]int
		}{
			{httpfilter.PhaseRequestHeaders, &c.reqHeaders},
			{httpfilter.PhaseRequestBody, &c.reqBody},
			{httpfilter.PhaseRequestTrailers, &c.reqTrailers},
			{httpfilter.PhaseResponseHeaders, &c.respHeaders},
			{httpfilter.PhaseResponseBody, &c.respBody},
			{httpfilter.PhaseResponseTrailers, &c.respTrailers},
			{httpfilter.PhaseStreamDone, &c.done},
		} {
			if ph&p.phase != 0 {
				*p.list = append(*p.list, pos)
			}
		}
	}
	return c, nil
}
