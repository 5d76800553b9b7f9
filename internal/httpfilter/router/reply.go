package router

import (
	"errors"
	"net"
	"os"
	"strconv"
	"time"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// finishResponseHeaders applies the route's response header mutations and the router's own
// headers.
func (f *filter) finishResponseHeaders(s *httpfilter.Stream) {
	if !f.cfg.SuppressEnvoyHeaders && !f.start.IsZero() {
		ms := time.Since(f.start).Milliseconds()
		b := strconv.AppendUint(f.numBuf[:0], uint64(ms), 10)
		s.Response.Set("x-envoy-upstream-service-time", unsafe.String(&f.numBuf[0], len(b)))
	}
	if f.fw != nil && f.fw.IncludeAttemptCountInResponse && f.attempt > 0 {
		b := strconv.AppendUint(f.numBuf[:0], uint64(f.attempt), 10)
		s.Response.Set("x-envoy-attempt-count", unsafe.String(&f.numBuf[0], len(b)))
	}
	if f.cookie != nil {
		s.Response.Add("set-cookie", f.setCookie())
	}
	if e := entry(s); e != nil {
		e.ApplyResponseHeaders(&s.Response, f.hm, f.headerVars(s))
	}
}

// upstreamFailed answers (or resets) after an upstream error, with Envoy's flags.
func (f *filter) upstreamFailed(s *httpfilter.Stream, err error, reading bool) {
	f.failed = true
	f.releaseConn(false)
	var ne net.Error
	timeout := errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	if timeout {
		switch f.classify(err) {
		case failDuration:
			f.st.RqMaxDuration.Inc()
			s.SendLocalReply(408, "downstream duration timeout", httpfilter.FlagDurationTimeout, "max_duration_timeout")
		case failPerTry:
			f.st.RqPerTryTimeout.Inc()
			s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_per_try_timeout")
		default:
			if f.st != nil {
				f.st.RqTimeout.Inc()
			}
			s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_response_timeout")
		}
		return
	}
	s.Info.UpstreamFailure = err.Error()
	if upstream.ProtocolError(err) {
		s.SendLocalReply(502, "upstream sent an invalid response", httpfilter.FlagUpstreamProtocolError, "upstream_reset_before_response_started{protocol_error}")
		return
	}
	s.SendLocalReply(503, bodyConnTerm, httpfilter.FlagUpstreamConnectionTermination, "upstream_reset_before_response_started{connection_termination}")
}

// directResponse answers with the route's direct_response.
func (f *filter) directResponse(s *httpfilter.Stream, e *route.Entry) {
	status, body := e.Direct()
	s.Response.Reset()
	s.Response.Status = status
	if len(body) > 0 {
		s.Response.Add("content-type", "text/plain")
	}
	b := strconv.AppendUint(f.numBuf[:0], uint64(len(body)), 10)
	s.Response.Add("content-length", unsafe.String(&f.numBuf[0], len(b)))
	e.ApplyResponseHeaders(&s.Response, nil, f.headerVars(s))
	s.Info.ResponseDetails = "direct_response"
	if len(body) == 0 {
		s.EncodeHeaders(true)
		return
	}
	s.EncodeHeaders(false)
	s.EncodeBody(body, true)
}

// redirect answers with the route's redirect.
func (f *filter) redirect(s *httpfilter.Stream, e *route.Entry) {
	code, location := e.Redirect(&s.Request, s.Downstream.Secure, f.pathBuf[:0])
	s.Response.Reset()
	s.Response.Status = code
	s.Response.Add("location", location)
	s.Response.Add("content-length", "0")
	e.ApplyResponseHeaders(&s.Response, nil, f.headerVars(s))
	s.Info.ResponseDetails = "direct_response"
	s.EncodeHeaders(true)
}
