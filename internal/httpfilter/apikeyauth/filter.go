package apikeyauth

import (
	"crypto/sha256"
	"net/url"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config: the route's settings, where it has them, over the
// chain's. The merged filter is kept on the per-route config, so streams share it.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	o, ok := perRoute.(*Config)
	if !ok {
		o = c
	}
	f := o.bound.Load()
	if f == nil || f.chain != c {
		f = &filter{chain: c, credentials: c.credentials, sources: c.sources, forwarding: c.forwarding}
		if o != c {
			if o.credentials != nil {
				f.credentials = o.credentials
			}
			if o.sources != nil {
				f.sources = o.sources
			}
			if o.forwarding != nil {
				f.forwarding = o.forwarding
			}
			f.allowed = o.allowed
		}
		o.bound.Store(f)
	}
	return f
}

type filter struct {
	httpfilter.PassThrough
	chain       *Config
	credentials map[[32]byte]string
	sources     []keySource
	forwarding  *forwarding
	allowed     map[string]bool
}

const (
	bodyUnauthorized = "Client authentication failed."
	bodyForbidden    = "Client is forbidden."
)

// OnRequestHeaders implements httpfilter.RequestHeadersFilter, as Envoy's ApiKeyAuthFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	st := f.chain.stats
	if f.sources == nil {
		return f.deny(s, 401, "missing_key_sources")
	}
	if f.credentials == nil {
		return f.deny(s, 401, "missing_credentials")
	}
	key := ""
	for _, src := range f.sources {
		if key = src.get(h); key != "" {
			break
		}
	}
	if key == "" {
		return f.deny(s, 401, "missing_api_key")
	}
	client, ok := f.credentials[sha256.Sum256([]byte(key))]
	if !ok {
		return f.deny(s, 401, "unkonwn_api_key") // sic: Envoy's details, as access logs see them
	}
	if f.allowed != nil && !f.allowed[client] {
		return f.deny(s, 403, "client_not_allowed")
	}
	if fw := f.forwarding; fw != nil {
		if fw.header != "" {
			h.Set(fw.header, client)
		}
		if fw.hide {
			for _, src := range f.sources {
				src.remove(h)
			}
		}
	}
	if st != nil {
		st.allowed.Inc()
	}
	return httpfilter.Continue
}

func (f *filter) deny(s *httpfilter.Stream, code int, details string) httpfilter.Status {
	body := bodyUnauthorized
	if code == 403 {
		body = bodyForbidden
	}
	if st := f.chain.stats; st != nil {
		if code == 403 {
			st.forbidden.Inc()
		} else {
			st.unauthorized.Inc()
		}
	}
	s.SendLocalReply(code, body, 0, details)
	return httpfilter.Stop
}

// get returns the key the source holds, "" when none.
func (k keySource) get(h *header.Map) string {
	switch k.kind {
	case fromHeader:
		v := h.Value(k.name)
		return strings.TrimPrefix(v, "Bearer ")
	case fromQuery:
		_, q, _ := strings.Cut(h.Path, "?")
		q, _, _ = strings.Cut(q, "#")
		for q != "" {
			var pair string
			pair, q, _ = strings.Cut(q, "&")
			name, value, _ := strings.Cut(pair, "=")
			if unescape(name) == k.name && value != "" {
				return unescape(value)
			}
		}
	case fromCookie:
		found := ""
		h.Values("cookie", func(v string) bool {
			found = cookieValue(v, k.name)
			return found == ""
		})
		return found
	}
	return ""
}

// unescape percent-decodes a query component (only when it has escapes: no allocation
// otherwise); an invalid escape leaves it as sent.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

func cookieValue(line, name string) string {
	for line != "" {
		var c string
		c, line, _ = strings.Cut(line, ";")
		n, v, ok := strings.Cut(strings.TrimSpace(c), "=")
		if ok && n == name {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}

// remove takes the key out of the request (forwarding.hide_credentials).
func (k keySource) remove(h *header.Map) {
	switch k.kind {
	case fromHeader:
		h.Del(k.name)
	case fromQuery:
		path, q, ok := strings.Cut(h.Path, "?")
		if !ok {
			return
		}
		var kept []string
		for _, pair := range strings.Split(q, "&") {
			name, _, _ := strings.Cut(pair, "=")
			if unescape(name) != k.name {
				kept = append(kept, pair)
			}
		}
		if len(kept) > 0 {
			path += "?" + strings.Join(kept, "&")
		}
		h.Path = path
	case fromCookie:
		var lines []string
		h.Values("cookie", func(v string) bool {
			var kept []string
			for _, c := range strings.Split(v, ";") {
				n, _, _ := strings.Cut(strings.TrimSpace(c), "=")
				if n != k.name {
					kept = append(kept, strings.TrimSpace(c))
				}
			}
			if len(kept) > 0 {
				lines = append(lines, strings.Join(kept, "; "))
			}
			return true
		})
		h.Del("cookie")
		for _, l := range lines {
			h.Add("cookie", l)
		}
	}
}
