package extauthz

import (
	"strings"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Header names of Envoy's ext_authz protocol.
const (
	hdrFailureModeAllowed = "x-envoy-auth-failure-mode-allowed"
	hdrPartialBody        = "x-envoy-auth-partial-body"
	hdrHeadersToRemove    = "x-envoy-auth-headers-to-remove"
)

// disabledFilter runs on routes that turn the check off.
var disabledFilter httpfilter.Filter = httpfilter.PassThrough{}

// NewFilter implements httpfilter.Config.
func (c *Config) NewFilter(s *httpfilter.Stream, pr httpfilter.Config) httpfilter.Filter {
	f := &filter{cfg: c, body: c.body}
	if p, ok := pr.(*perRoute); ok {
		if p.disabled {
			if c.stats != nil {
				c.stats.disabled.Inc()
			}
			return disabledFilter
		}
		if p.body != nil {
			f.body = p.body
		}
		if p.noBodyBuffering {
			f.body = nil
		}
	}
	return f
}

// filter is one stream's check.
type filter struct {
	httpfilter.PassThrough
	cfg  *Config
	body *bodySettings
	// waiting is set while the request body is buffered for the check.
	waiting bool
	// respHeaders go on the response: the denial's, or allowed_client_headers_on_success.
	respHeaders []header.Field
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	// A client must not pass for the filter: the authorization service and the upstream
	// only see x-envoy-auth-* headers the filter itself sets.
	h.DelIf(isAuthHeader)
	if f.body != nil && !end {
		if n, ok := header.ParseDecimal(h.Value("content-length")); ok && n > int64(f.body.max) && !f.body.allowPartial {
			s.SendLocalReply(413, "Payload Too Large", 0, "ext_authz_request_payload_too_large")
			return httpfilter.Stop
		}
		f.waiting = true
		return httpfilter.StopAndBuffer
	}
	return f.check(s, h, nil, false)
}

// OnRequestBody implements httpfilter.RequestBodyFilter. The connection manager delivers
// the buffered body whole, at its end or before trailers.
func (f *filter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if !f.waiting {
		return httpfilter.Continue
	}
	f.waiting = false
	partial := false
	if len(chunk) > f.body.max {
		if !f.body.allowPartial {
			s.SendLocalReply(413, "Payload Too Large", 0, "ext_authz_request_payload_too_large")
			return httpfilter.Stop
		}
		chunk, partial = chunk[:f.body.max], true
	}
	if chunk == nil {
		chunk = []byte{}
	}
	return f.check(s, &s.Request, chunk, partial)
}

// OnRequestTrailers implements httpfilter.RequestTrailersFilter: trailers with no body
// before them end a request whose body the filter waited for.
func (f *filter) OnRequestTrailers(s *httpfilter.Stream, _ *header.Map) httpfilter.Status {
	if !f.waiting {
		return httpfilter.Continue
	}
	f.waiting = false
	return f.check(s, &s.Request, []byte{}, false)
}

// OnResponseHeaders implements httpfilter.ResponseHeadersFilter.
func (f *filter) OnResponseHeaders(_ *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	if len(f.respHeaders) == 0 {
		return httpfilter.Continue
	}
	for i, hf := range f.respHeaders {
		if !seenBefore(f.respHeaders[:i], hf.Name) {
			h.Del(hf.Name)
		}
	}
	for _, hf := range f.respHeaders {
		h.Add(hf.Name, hf.Value)
	}
	return httpfilter.Continue
}

// check asks the authorization service and acts on the answer. body is nil when the
// request's body is not sent.
func (f *filter) check(s *httpfilter.Stream, h *header.Map, body []byte, partial bool) httpfilter.Status {
	c := f.cfg
	res, err := c.call(s.Ctx, h, body, partial)
	if s.Ctx.Err() != nil {
		// The client is gone or the stream timed out: nobody is left to answer.
		return httpfilter.Stop
	}
	st := c.stats
	if err != nil {
		if st != nil {
			st.errors.Inc()
		}
		if c.failureModeAllow {
			if st != nil {
				st.failureModeAllowed.Inc()
			}
			if c.failureHeaderAdd {
				h.Set(hdrFailureModeAllowed, "true")
			}
			return httpfilter.Continue
		}
		s.SendLocalReply(c.statusOnError, "", httpfilter.FlagUnauthorizedExternalService, "ext_authz_error")
		return httpfilter.Stop
	}
	if res.status < 200 || res.status > 299 {
		if st != nil {
			st.denied.Inc()
		}
		for _, hf := range res.headers {
			if c.clientAllowed(hf.Name) {
				f.respHeaders = append(f.respHeaders, hf)
			}
		}
		s.SendLocalReply(res.status, string(res.body), httpfilter.FlagUnauthorizedExternalService, "ext_authz_denied")
		return httpfilter.Stop
	}
	if st != nil {
		st.ok.Inc()
	}
	changed := false
	if c.upstream != nil {
		for i, hf := range res.headers {
			if c.upstream.match(hf.Name) && forwardable(hf.Name) {
				if !seenBefore(res.headers[:i], hf.Name) {
					h.Del(hf.Name)
				}
				h.Add(hf.Name, hf.Value)
				changed = true
			}
		}
	}
	if c.upstreamAppend != nil {
		for _, hf := range res.headers {
			if c.upstreamAppend.match(hf.Name) && forwardable(hf.Name) {
				h.Add(hf.Name, hf.Value)
				changed = true
			}
		}
	}
	for _, hf := range res.headers {
		if hf.Name != hdrHeadersToRemove {
			continue
		}
		for _, n := range strings.Split(hf.Value, ",") {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" && forwardable(n) && n != "host" {
				changed = h.Del(n) || changed
			}
		}
	}
	if c.clientSuccess != nil {
		for _, hf := range res.headers {
			if c.clientSuccess.match(hf.Name) && forwardable(hf.Name) {
				f.respHeaders = append(f.respHeaders, hf)
			}
		}
	}
	if changed && c.clearRouteCache {
		s.ClearRouteCache()
	}
	return httpfilter.Continue
}

// clientAllowed reports whether a header of a denial goes to the client: those
// allowed_client_headers selects (with the ones Envoy always adds), else all but framing.
func (c *Config) clientAllowed(name string) bool {
	if !forwardable(name) || name == "host" {
		return false
	}
	if c.client == nil {
		return true
	}
	return name == "www-authenticate" || name == "location" || c.client.match(name)
}

// forwardable reports whether a header from the authorization service may be copied onto
// the request or the response: framing and hop-by-hop fields belong to one connection.
func forwardable(name string) bool {
	switch name {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
		"proxy-connection", "te", "trailer":
		return false
	}
	return !strings.HasPrefix(name, ":")
}

func isAuthHeader(hf header.Field) bool { return strings.HasPrefix(hf.Name, "x-envoy-auth-") }

func seenBefore(fs []header.Field, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}
