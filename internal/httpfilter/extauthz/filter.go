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
		f.ext = p.contextExtensions
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
	// ext is the route's context_extensions (gRPC mode).
	ext map[string]string
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

// decision is what the authorization service decided, whatever the protocol.
type decision struct {
	allowed bool
	// A denial: status, body and the headers for the client.
	status int
	body   []byte
	// On success: request headers to set (replacing), to append and to remove, and
	// headers for the client's response. A denial's client headers are in respHeaders too.
	set, add    []header.Field
	remove      []string
	respHeaders []header.Field
}

// check asks the authorization service and acts on its decision. body is nil when the
// request's body is not sent.
func (f *filter) check(s *httpfilter.Stream, h *header.Map, body []byte, partial bool) httpfilter.Status {
	c := f.cfg
	var d *decision
	var err error
	if c.grpc != nil {
		d, err = c.callGRPC(s, h, body, f.ext)
	} else {
		d, err = c.callHTTP(s.Ctx, h, body, partial)
	}
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
	if !d.allowed {
		if st != nil {
			st.denied.Inc()
		}
		f.respHeaders = d.respHeaders
		s.SendLocalReply(d.status, string(d.body), httpfilter.FlagUnauthorizedExternalService, "ext_authz_denied")
		return httpfilter.Stop
	}
	if st != nil {
		st.ok.Inc()
	}
	changed := false
	for i, hf := range d.set {
		if !seenBefore(d.set[:i], hf.Name) {
			h.Del(hf.Name)
		}
		h.Add(hf.Name, hf.Value)
		changed = true
	}
	for _, hf := range d.add {
		h.Add(hf.Name, hf.Value)
		changed = true
	}
	for _, n := range d.remove {
		changed = h.Del(n) || changed
	}
	f.respHeaders = d.respHeaders
	if changed && c.clearRouteCache {
		s.ClearRouteCache()
	}
	return httpfilter.Continue
}

// httpDecision reads an HTTP service's answer: a 2xx allows, anything else denies.
func (c *Config) httpDecision(a *answer) *decision {
	d := &decision{status: a.status, body: a.body}
	if a.status < 200 || a.status > 299 {
		for _, hf := range a.headers {
			if c.clientAllowed(hf.Name) {
				d.respHeaders = append(d.respHeaders, hf)
			}
		}
		return d
	}
	d.allowed = true
	for _, hf := range a.headers {
		if !forwardable(hf.Name) {
			continue
		}
		if c.upstream != nil && c.upstream.match(hf.Name) {
			d.set = append(d.set, hf)
		}
		if c.upstreamAppend != nil && c.upstreamAppend.match(hf.Name) {
			d.add = append(d.add, hf)
		}
		if c.clientSuccess != nil && c.clientSuccess.match(hf.Name) {
			d.respHeaders = append(d.respHeaders, hf)
		}
		if hf.Name == hdrHeadersToRemove {
			for _, n := range strings.Split(hf.Value, ",") {
				if n = strings.ToLower(strings.TrimSpace(n)); n != "" && forwardable(n) && n != "host" {
					d.remove = append(d.remove, n)
				}
			}
		}
	}
	return d
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
