package csrf

import (
	"strings"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config. The filter keeps no per-stream state.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	p, ok := perRoute.(*Config)
	if !ok {
		p = c
	}
	f := p.bound.Load()
	if f == nil || f.stats != c.stats {
		f = &filter{policy: p, stats: c.stats}
		p.bound.Store(f)
	}
	return f
}

type filter struct {
	httpfilter.PassThrough
	policy *Config
	stats  *csrfStats
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter, as Envoy's CsrfFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	p := f.policy
	enabled, shadow := p.enabled.sample(), p.shadow.sample()
	if !enabled && !shadow {
		return httpfilter.Continue
	}
	switch h.Method {
	case "POST", "PUT", "DELETE", "PATCH":
	default:
		return httpfilter.Continue
	}
	valid := true
	src := sourceOrigin(h)
	if src == "" {
		valid = false
		if f.stats != nil {
			f.stats.missingOrigin.Inc()
		}
	}
	if !p.originValid(src, h) {
		valid = false
		if f.stats != nil {
			f.stats.invalid.Inc()
		}
	}
	if valid {
		if f.stats != nil {
			f.stats.valid.Inc()
		}
		return httpfilter.Continue
	}
	if !enabled {
		return httpfilter.Continue // shadow mode: counted, not enforced
	}
	s.SendLocalReply(403, "Invalid origin", 0, "csrf_origin_mismatch")
	return httpfilter.Stop
}

// originValid: the source origin is the request's own host (as sent, port included) or matches
// one of additional_origins.
func (c *Config) originValid(src string, h *header.Map) bool {
	if src == hostAndPort(h.Authority) {
		return true
	}
	for i := range c.origins {
		if c.origins[i].Match(src) {
			return true
		}
	}
	return false
}

// sourceOrigin is the host and port of the Origin header, else of the Referer.
func sourceOrigin(h *header.Map) string {
	if v := h.Value("origin"); v != "" {
		return hostAndPort(v)
	}
	return hostAndPort(h.Value("referer"))
}

// hostAndPort returns the authority of an absolute URL, and anything else unchanged (so that
// "null" stays "null" and matches no host).
func hostAndPort(v string) string {
	i := strings.Index(v, "://")
	if i <= 0 {
		return v
	}
	rest := v[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		rest = rest[:j]
	}
	if j := strings.LastIndexByte(rest, '@'); j >= 0 {
		rest = rest[j+1:] // userinfo is not part of the origin
	}
	if rest == "" {
		return v
	}
	return rest
}
