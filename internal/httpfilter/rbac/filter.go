package rbac

import (
	"log/slog"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config. The filter keeps no per-stream state: every stream
// of a route shares one value, bound to the chain's stats (a per-route config counts into the
// stats of the chain it runs in, as in Envoy).
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	chain := c.bound.Load()
	o, ok := perRoute.(*Config)
	if !ok || chain == nil {
		if chain == nil {
			chain = &filter{rules: c.rules, shadow: c.shadow}
		}
		return chain
	}
	f := o.bound.Load()
	if f == nil || f.stats != chain.stats {
		f = &filter{rules: o.rules, shadow: o.shadow, stats: chain.stats}
		o.bound.Store(f)
	}
	return f
}

type filter struct {
	httpfilter.PassThrough
	rules, shadow *engine
	stats         *rbacStats // nil outside a connection manager (unit tests)
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	if f.shadow != nil {
		allowed, _ := f.shadow.evaluate(s, h)
		if f.stats != nil {
			if allowed {
				f.stats.shadowAllowed.Inc()
			} else {
				f.stats.shadowDenied.Inc()
			}
		}
	}
	e := f.rules
	if e == nil {
		return httpfilter.Continue
	}
	allowed, p := e.evaluate(s, h)
	if e.action == actionLog {
		if f.stats != nil {
			if p != nil {
				f.stats.logged.Inc()
			} else {
				f.stats.notLogged.Inc()
			}
			f.stats.allowed.Inc()
		}
		return httpfilter.Continue
	}
	if allowed {
		if f.stats != nil {
			f.stats.allowed.Inc()
		}
		return httpfilter.Continue
	}
	if f.stats != nil {
		f.stats.denied.Inc()
	}
	details := e.noneDetails
	if p != nil {
		details = p.details
	}
	if slog.Default().Enabled(s.Ctx, slog.LevelDebug) {
		slog.Debug("rbac: access denied", "details", details, "remote", s.Downstream.RemoteAddr.String(), "path", h.Path)
	}
	s.SendLocalReply(403, "RBAC: access denied", httpfilter.FlagRBACAccessDenied, details)
	return httpfilter.Stop
}
