package cors

import (
	"math/rand/v2"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseResponseHeaders
}

// Phases implements httpfilter.Config; a Policy is only ever a per-route override.
func (p *Policy) Phases() httpfilter.Phases { return 0 }

// NewFilter implements httpfilter.Config; the chain's Config makes the filters.
func (p *Policy) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return noop }

// NewFilter implements httpfilter.Config. Without a policy for the route, the stream gets no
// filter. With one, it gets the policy's shared, stateless filter, unless filter_enabled or
// shadow_enabled samples a fraction of requests: the decision must then hold for the
// response too, and is kept in a filter of the stream's own.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	p, ok := perRoute.(*Policy)
	if !ok {
		return noop
	}
	f := p.bound.Load()
	if f == nil || f.stats != c.stats {
		f = &filter{p: p, stats: c.stats, enabled: p.enabled.always(), shadow: !p.shadow.never()}
		p.bound.Store(f)
	}
	if p.enabled.always() && (p.shadow.always() || p.shadow.never()) {
		return f
	}
	s := *f
	s.enabled = sample(p.enabled)
	s.shadow = sample(p.shadow)
	return &s
}

var noop = httpfilter.PassThrough{}

func sample(f fraction) bool {
	if f.always() {
		return true
	}
	return f.num > 0 && rand.Uint32N(f.den) < f.num
}

// filter applies one policy. It keeps no state of the stream: the response phase reads the
// request's Origin again, so that streams can share it.
type filter struct {
	httpfilter.PassThrough
	p       *Policy
	stats   *corsStats
	enabled bool // enforce the policy
	shadow  bool // only count valid and invalid origins
}

// originAllowed follows Envoy: an origin matcher that matches "*" allows every origin.
func (p *Policy) originAllowed(origin string) bool {
	for i := range p.origins {
		if p.origins[i].Match("*") || p.origins[i].Match(origin) {
			return true
		}
	}
	return false
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter: it counts the origin and answers
// preflight requests (OPTIONS with Origin and Access-Control-Request-Method).
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	if !f.enabled && !f.shadow {
		return httpfilter.Continue
	}
	origin := h.Value("origin")
	if origin == "" {
		return httpfilter.Continue
	}
	p := f.p
	allowed := p.originAllowed(origin)
	if f.stats != nil {
		if allowed {
			f.stats.originValid.Inc()
		} else {
			f.stats.originInvalid.Inc()
		}
	}
	if !f.enabled || h.Method != "OPTIONS" {
		return httpfilter.Continue
	}
	reqMethod := h.Value("access-control-request-method")
	if reqMethod == "" {
		return httpfilter.Continue
	}
	if !allowed && p.forwardNoMatch {
		return httpfilter.Continue
	}
	// A preflight: answer it here. An origin that does not match gets no
	// Access-Control-Allow-Origin, which makes the browser refuse the actual request.
	r := &s.Response
	r.Reset()
	r.Status = 200
	if allowed {
		r.Set("access-control-allow-origin", origin)
	}
	if p.credentials {
		r.Set("access-control-allow-credentials", "true")
	}
	switch p.allowMethods {
	case "":
	case "*":
		r.Set("access-control-allow-methods", reqMethod)
	default:
		r.Set("access-control-allow-methods", p.allowMethods)
	}
	switch p.allowHeaders {
	case "":
	case "*":
		r.Set("access-control-allow-headers", h.Value("access-control-request-headers"))
	default:
		r.Set("access-control-allow-headers", p.allowHeaders)
	}
	if p.maxAge != "" {
		r.Set("access-control-max-age", p.maxAge)
	}
	if p.privateNet && h.Value("access-control-request-private-network") == "true" {
		r.Set("access-control-allow-private-network", "true")
	}
	r.Set("content-length", "0")
	s.Info.ResponseDetails = "cors_response"
	s.EncodeHeaders(true)
	return httpfilter.Stop
}

// OnResponseHeaders implements httpfilter.ResponseHeadersFilter: a response to an allowed
// origin gets Access-Control-Allow-Origin (the origin itself), -Allow-Credentials and
// -Expose-Headers, as in Envoy. Every response under an enforced policy also gets
// "Vary: Origin", since it depends on the request's Origin: without it a shared cache could
// hand one origin's response to another (the Fetch standard's advice; Envoy omits it).
func (f *filter) OnResponseHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	if !f.enabled {
		return httpfilter.Continue
	}
	addVaryOrigin(h)
	origin := s.Request.Value("origin")
	if origin == "" || !f.p.originAllowed(origin) {
		return httpfilter.Continue
	}
	h.Set("access-control-allow-origin", origin)
	if f.p.credentials {
		h.Set("access-control-allow-credentials", "true")
	}
	if f.p.exposeHeaders != "" {
		h.Set("access-control-expose-headers", f.p.exposeHeaders)
	}
	return httpfilter.Continue
}

// addVaryOrigin adds Origin to Vary unless a Vary field already names it (or is "*").
func addVaryOrigin(h *header.Map) {
	found := false
	h.Values("vary", func(v string) bool {
		if varyHas(v) {
			found = true
			return false
		}
		return true
	})
	if !found {
		h.Add("vary", "Origin")
	}
}

// varyHas reports whether a Vary value lists Origin or "*".
func varyHas(v string) bool {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := trimOWS(v[:i])
		if tok == "*" || len(tok) == 6 && (tok[0]|0x20) == 'o' && (tok[1]|0x20) == 'r' && (tok[2]|0x20) == 'i' &&
			(tok[3]|0x20) == 'g' && (tok[4]|0x20) == 'i' && (tok[5]|0x20) == 'n' {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

var (
	_ httpfilter.ScopedConfig = (*Config)(nil)
	_ httpfilter.Config       = (*Policy)(nil)
)
