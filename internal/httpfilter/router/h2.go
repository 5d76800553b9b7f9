package router

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// h2Close ends the HTTP/2 attempt. When the round trip runs on its own goroutine, it waits
// for it: the stream and the filter are recycled as soon as OnStreamDone returns, and that
// goroutine still uses both until it finishes (a downstream reset ends the stream while the
// upstream is still answering).
func (f *filter) h2Close() {
	f.h2.Cancel()
	if f.h2Started {
		<-f.h2Done
	}
	f.h2.Close(false)
}

// h2Start sends the request headers to an HTTP/2 upstream.
func (f *filter) h2Start(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	f.beginAttempt(h)
	x := &f.h2x
	f.h2 = x
	x.Prepare(h, end)
	x.Connect(s.Ctx, f.pool, f.attemptDeadline())
	x.WriteHeaders(h, end)
	if end {
		f.h2Exchange(s, h)
		return httpfilter.Stop
	}
	// With a body still to come, the round trip runs beside the body pump, and relays the
	// response as it arrives.
	f.h2Started = true
	f.h2Done = make(chan struct{})
	go func() {
		defer close(f.h2Done)
		end, err := x.ReadResponse(&s.Response)
		f.h2Report(s, err)
		if err != nil {
			f.h2Failed(s, err)
			return
		}
		f.relay(s, x, end)
	}()
	return httpfilter.Continue
}

// h2Body writes one request body chunk into the pipe feeding the upstream stream.
func (f *filter) h2Body(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if err := f.h2.WriteBody(chunk); err != nil {
		// The round trip ended (it reports its own error); stop feeding it.
		return httpfilter.Stop
	}
	if end {
		f.h2.WriteEnd(nil)
		return httpfilter.Stop
	}
	return httpfilter.Continue
}

// h2End ends the request body with its trailers.
func (f *filter) h2End(t *header.Map) httpfilter.Status {
	f.h2.WriteEnd(t)
	return httpfilter.Stop
}

// h2Failed answers a round trip that failed before the response head. f.failed is left
// alone: with a request body still arriving, the stream's goroutine reads it concurrently.
func (f *filter) h2Failed(s *httpfilter.Stream, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		f.failLocally(s, f.classify(os.ErrDeadlineExceeded), err)
		return
	}
	if s.Ctx.Err() != nil {
		s.SendLocalReply(503, bodyConnTerm, httpfilter.FlagDownstreamConnectionTermination, "downstream_remote_disconnect")
		return
	}
	s.Info.UpstreamFailure = err.Error()
	s.SendLocalReply(503, bodyConnectFail, httpfilter.FlagUpstreamConnectFailure, "upstream_reset_before_response_started{connection_failure}")
}

// h2RelayFailed ends a response whose body failed to arrive after its head was relayed.
func (f *filter) h2RelayFailed(s *httpfilter.Stream, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		s.Info.ResponseFlags |= httpfilter.FlagUpstreamRequestTimeout
	} else {
		s.Info.ResponseFlags |= httpfilter.FlagUpstreamReset
	}
	s.SendLocalReply(502, "", 0, "upstream_reset_after_response_started")
}

// h2Kind classifies a failed HTTP/2 round trip.
func (f *filter) h2Kind(err error) failKind {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return f.classify(os.ErrDeadlineExceeded)
	case errors.Is(err, upstream.ErrOverflow):
		return failOverflow
	case errors.Is(err, upstream.ErrConnectFailed):
		return failConnect
	}
	return failReset
}

// h2Report tells the host's outlier detector how a round trip went.
func (f *filter) h2Report(s *httpfilter.Stream, err error) {
	if err != nil {
		f.report(f.h2Kind(err), 0)
		return
	}
	f.report(failNone, s.Response.Status)
}

// h2Exchange runs a request without a body against an HTTP/2 upstream, retrying it as the
// retry policy allows, and relays the final answer.
func (f *filter) h2Exchange(s *httpfilter.Stream, h *header.Map) {
	x := f.h2
	for {
		end, err := x.ReadResponse(&s.Response)
		f.h2Report(s, err)
		kind, status := failNone, 0
		if err != nil {
			kind = f.h2Kind(err)
		} else if f.rp != nil && f.rp.RetriableResponse(f.retryOn, s.Response.Status, &s.Response) {
			status = s.Response.Status
		}
		if (err != nil || status != 0) && f.retriable(s, kind, status) && f.nextAttempt(s, h) {
			x.Close(false)
			s.Response.Reset()
			if f.pool.Protocol() != upstream.HTTP2 {
				// A retry landed on a host whose pool speaks HTTP/1.1 (a downstream-protocol
				// cluster without h2): not expected within one cluster; answer with the failure.
				f.h2Failed(s, errors.New("upstream protocol changed"))
				return
			}
			x.Prepare(h, true)
			x.Connect(s.Ctx, f.pool, f.attemptDeadline())
			x.WriteHeaders(h, true)
			continue
		}
		if err != nil {
			f.h2Fail(s, kind, err)
			return
		}
		f.relay(s, x, end)
		return
	}
}

// h2Fail answers a failed round trip of the synchronous path.
func (f *filter) h2Fail(s *httpfilter.Stream, kind failKind, err error) {
	if kind == failReset && s.Ctx.Err() != nil {
		s.SendLocalReply(503, bodyConnTerm, httpfilter.FlagDownstreamConnectionTermination, "downstream_remote_disconnect")
		return
	}
	if kind == failReset {
		kind = failConnect // as before: an HTTP/2 stream that fails before its headers
	}
	f.failLocally(s, kind, err)
}

// relay streams the response whose head x read downstream: from the stream's goroutine, or
// for an HTTP/2 request still sending its body, from the round trip's own.
func (f *filter) relay(s *httpfilter.Stream, x upstream.Exchange, end bool) {
	h2 := f.h2 != nil
	if f.retried {
		f.st.RqRetrySuccess.Inc()
	}
	s.Info.FirstUpstreamRx = time.Now()
	f.finishResponseHeaders(s)
	s.EncodeHeaders(end)
	for !end {
		if !h2 {
			if s.Ctx.Err() != nil {
				// The client is gone (or the stream was reset): stop reading a response
				// nobody receives; the connection is mid-body, so it cannot be reused.
				f.failed = true
				f.releaseConn(false)
				return
			}
			if f.idleTimeout() > 0 {
				x.SetReadDeadline(f.nextDeadline())
			}
		}
		chunk, last, err := x.ReadBody()
		if err != nil {
			if h2 {
				f.h2RelayFailed(s, err)
			} else {
				f.upstreamFailed(s, err, true)
			}
			return
		}
		end = last
		if end {
			x.Trailers(&s.ResponseTrailers)
			if s.ResponseTrailers.Len() > 0 {
				if len(chunk) > 0 {
					s.EncodeBody(chunk, false)
				}
				s.EncodeTrailers()
				break
			}
		}
		if len(chunk) > 0 || end {
			s.EncodeBody(chunk, end)
		}
	}
	if h2 {
		return
	}
	f.reusable = f.h1x.Reusable()
	if !f.reusable {
		f.releaseConn(false)
	}
	// A reusable connection is returned in OnStreamDone (see there).
}
