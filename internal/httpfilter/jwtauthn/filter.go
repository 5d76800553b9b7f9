package jwtauthn

import (
	"context"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// filter decides one requirement (fixed by a per-route requirement_name) or finds it with
// the rules. It keeps no per-stream state, so one value serves every stream of its kind.
type filter struct {
	httpfilter.PassThrough
	cfg      *Config
	fixed    bool         // req comes from the route's requirement_name, not the rules
	req      *requirement // with fixed; nil when the name is not in requirement_map
	disabled bool
}

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config: the route's PerRouteConfig disables the filter
// or names its requirement; without one the rules decide.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	o, _ := perRoute.(*override)
	if o == nil {
		return c.filter
	}
	return o.filterFor(c)
}

// overrideFilter remembers the filter an override made for the last Config it met, so that
// a requirement_name is looked up once per configuration, not per request.
type overrideFilter struct {
	cfg *Config
	f   *filter
}

func (o *override) filterFor(c *Config) *filter {
	if of := o.last.Load(); of != nil && of.cfg == c {
		return of.f
	}
	f := &filter{cfg: c, disabled: o.disabled, fixed: !o.disabled}
	if f.fixed {
		f.req = c.reqMap[o.reqName]
	}
	o.last.Store(&overrideFilter{cfg: c, f: f})
	return f
}

// success is a token that met a provider of the requirement; its results are left on the
// request once the whole requirement is met.
type success struct {
	p   *provider
	v   *verified
	loc int
}

// eval is one request's evaluation of a requirement. It lives on the stack: the successes
// go in a small array, and only a requirement meeting more providers than it holds spills.
type eval struct {
	s    *httpfilter.Stream
	h    *header.Map
	cfg  *Config
	ctx  context.Context // the stream's, bounding a wait for keys
	now  int64
	n    int
	oks  [2]success
	more []success
}

func (ev *eval) add(sc success) {
	if ev.n < len(ev.oks) {
		ev.oks[ev.n] = sc
	} else {
		ev.more = append(ev.more, sc)
	}
	ev.n++
}

// truncate forgets the successes after the first n.
func (ev *eval) truncate(n int) {
	ev.n = n
	ev.more = ev.more[:max(0, n-len(ev.oks))]
}

func (ev *eval) at(i int) *success {
	if i < len(ev.oks) {
		return &ev.oks[i]
	}
	return &ev.more[i-len(ev.oks)]
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	c := f.cfg
	for _, n := range c.sanitize {
		h.Del(n)
	}
	if f.disabled {
		return httpfilter.Continue
	}
	if c.bypassCORS && h.Method == "OPTIONS" && h.Value("origin") != "" && h.Value("access-control-request-method") != "" {
		c.stats.corsBypassed.Inc()
		c.stats.allowed.Inc()
		return httpfilter.Continue
	}
	req := f.req
	if !f.fixed {
		for i := range c.rules {
			if c.rules[i].match.matches(h) {
				req = c.rules[i].req
				break
			}
		}
	} else if req == nil {
		c.stats.denied.Inc()
		s.SendLocalReply(403, "Failed JWT authentication", 0, "jwt_authn_access_denied{unknown_requirement_name}")
		return httpfilter.Stop
	}
	if req == nil {
		c.stats.allowed.Inc()
		return httpfilter.Continue
	}
	ev := eval{s: s, h: h, cfg: c, ctx: s.Ctx, now: time.Now().Unix()}
	if ev.ctx == nil {
		ev.ctx = context.Background()
	}
	st := ev.run(req)
	if s.Ctx != nil && s.Ctx.Err() != nil {
		return httpfilter.Stop // the stream is gone while keys were fetched: nobody to answer
	}
	if st != stOK {
		c.stats.denied.Inc()
		f.deny(s, h, st)
		return httpfilter.Stop
	}
	clear := false
	for i := range ev.n {
		ok := ev.at(i)
		ok.p.apply(s, h, ok.v, ok.loc)
		clear = clear || ok.p.clearRouteCache
	}
	c.stats.allowed.Inc()
	if clear {
		s.ClearRouteCache()
	}
	return httpfilter.Continue
}

func (ev *eval) run(r *requirement) status {
	switch r.kind {
	case reqProvider:
		tok, loc := r.prov.extract(ev.h)
		if tok == "" {
			return stMissed
		}
		st, v := r.prov.verify(ev.ctx, tok, r.audiences, ev.cfg.stats, ev.now)
		if st == stOK {
			ev.add(success{p: r.prov, v: v, loc: loc})
		}
		return st
	case reqAll:
		for _, ch := range r.children {
			if st := ev.run(ch); st != stOK {
				return st
			}
		}
		return stOK
	case reqAny:
		res := stMissed
		for _, ch := range r.children {
			n := ev.n
			st := ev.run(ch)
			if st == stOK {
				return stOK
			}
			ev.truncate(n) // a requires_all child may have met some providers first
			if res == stMissed {
				res = st
			}
		}
		return res
	case reqAllowMissing:
		if st := ev.anyProvider(); st != stMissed {
			return st
		}
		return stOK
	case reqAllowMissingOrFailed:
		ev.anyProvider()
		return stOK
	}
	return stMissed
}

// anyProvider verifies the first token any provider finds that this provider accepts, for
// the allow_missing requirements: a token of another issuer is left to the provider of that
// issuer.
func (ev *eval) anyProvider() status {
	res := stMissed
	for _, p := range ev.cfg.providers {
		tok, loc := p.extract(ev.h)
		if tok == "" {
			continue
		}
		st, v := p.verify(ev.ctx, tok, nil, ev.cfg.stats, ev.now)
		if st == stOK {
			ev.add(success{p: p, v: v, loc: loc})
			return stOK
		}
		if res == stMissed || res == stUnknownIssuer {
			res = st
		}
	}
	return res
}

// deny answers as Envoy does: 401 with a Bearer challenge naming the request's URI (and
// error="invalid_token" unless the token was missing), or 403 when a valid token was not
// meant for this audience; the body is the reason unless strip_failure_response is set.
func (f *filter) deny(s *httpfilter.Stream, h *header.Map, st status) {
	code := 401
	if st == stAudienceNotAllowed {
		code = 403
	}
	path, _, _ := strings.Cut(h.Path, "?") // the query may hold the token itself
	scheme := h.Scheme
	if scheme == "" {
		scheme = "http"
	}
	challenge := `Bearer realm="` + quoteSafe(scheme+"://"+h.Authority+path) + `"`
	if st != stMissed {
		challenge += `, error="invalid_token"`
	}
	body := statusMessages[st]
	if f.cfg.stripFailure {
		body = ""
	}
	s.Info.ResponseDetails = statusDetails[st]
	s.Response.Reset()
	s.Response.Status = code
	s.Response.Set("www-authenticate", challenge)
	if body != "" {
		s.Response.Set("content-type", "text/plain")
	}
	s.Response.Set("content-length", itoa(len(body)))
	s.EncodeHeaders(body == "")
	if body != "" {
		s.EncodeBody([]byte(body), true)
	}
}

// quoteSafe keeps a quoted-string intact: quotes and backslashes are percent-encoded.
func quoteSafe(v string) string {
	if !strings.ContainsAny(v, `"\`) {
		return v
	}
	return strings.NewReplacer(`"`, "%22", `\`, "%5C").Replace(v)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

var _ httpfilter.Filter = (*filter)(nil)
