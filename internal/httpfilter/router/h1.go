package router

import (
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/nuncio-gw/nuncio/internal/codec/http1"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// h1Fail answers after a write failure that cannot be retried.
func (f *filter) h1Fail(s *httpfilter.Stream, err error) {
	kind := f.classify(err)
	f.report(kind, 0)
	f.failLocally(s, kind, err)
}

// h1Start takes a connection and sends the request head (and, with no body, waits for the
// response).
func (f *filter) h1Start(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	f.framing = http1.Framing{Kind: http1.None}
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		// Kept even when zero: a POST without any length is refused by some servers (411).
		f.framing = http1.Framing{Kind: http1.Length, Length: n}
	} else if !end {
		f.framing = http1.Framing{Kind: http1.Chunked}
	} else if h.Method == "POST" || h.Method == "PUT" || h.Method == "PATCH" {
		// An HTTP/2 request ends its stream instead of declaring a length; HTTP/1.1 needs one.
		f.framing = http1.Framing{Kind: http1.Length}
	}
	f.reqDone = end
	f.beginAttempt(h)
	if !f.h1Send(s, h, false) {
		return httpfilter.Stop
	}
	if !end {
		return httpfilter.Continue
	}
	f.h1Finish(s)
	return httpfilter.Stop
}

// h1Send runs an attempt begun with beginAttempt: it takes a connection (retrying connect failures on other hosts
// as the retry policy allows) and writes the request head, and with replay the kept body and
// trailers. A write failure while the request body is still arriving is kept in pendErr: the
// rest of the body is then only kept, and the retry happens once it is complete. It returns
// false when the stream has been answered.
func (f *filter) h1Send(s *httpfilter.Stream, h *header.Map, replay bool) bool {
	// A reused keep-alive connection may have been closed by the upstream just now; a request
	// without a body can safely go again on a fresh connection, as Go's Transport does.
	stale := 0
	for {
		kind, err := f.connect(s)
		if kind != failNone {
			f.report(kind, 0)
			if kind == failConnect && f.retriable(s, kind, 0) && f.nextAttempt(s, h) {
				continue
			}
			f.failLocally(s, kind, err)
			return false
		}
		err = f.cc.WriteRequestHead(h, f.framing)
		if err == nil && replay {
			if b := f.bodyBytes(); len(b) > 0 {
				err = f.cc.WriteBody(b)
			}
			if err == nil && f.reqDone {
				err = f.writeEnd(s)
			}
		} else if err == nil && f.reqDone {
			err = f.cc.Flush()
		}
		if err == nil {
			return true
		}
		if stale == 0 && f.reused && (f.reqDone || replay) {
			stale++
			f.releaseConn(false)
			continue
		}
		if !f.reqDone && f.keepBody {
			f.pendErr = err
			f.releaseConn(false)
			return true
		}
		kind = f.classify(err)
		f.report(kind, 0)
		if f.retriable(s, kind, 0) && f.nextAttempt(s, h) {
			continue
		}
		f.failLocally(s, kind, err)
		return false
	}
}

// nextAttempt waits out the back-off and moves to the retry's host. It returns false (the
// caller answers with the last failure) when the stream or the route timeout ends first or
// no host is left.
func (f *filter) nextAttempt(s *httpfilter.Stream, h *header.Map) bool {
	f.releaseConn(false)
	if !f.backOff(s) {
		return false
	}
	host := f.nextHost()
	if host == nil {
		return false
	}
	f.useHost(s, host)
	if f.fw.AutoHostRewrite && host.Hostname != "" {
		h.Authority = host.Hostname
	}
	f.beginAttempt(h)
	return true
}

// writeEnd ends the request body (with the request trailers, if any) and flushes.
func (f *filter) writeEnd(s *httpfilter.Stream) error {
	var t *header.Map
	if s.RequestTrailers.Len() > 0 {
		t = &s.RequestTrailers
	}
	if err := f.cc.WriteEnd(t); err != nil {
		return err
	}
	return f.cc.Flush()
}

// h1Finish runs once the whole request has arrived: it ends the request upstream, reads the
// response and retries the request as the policy allows.
func (f *filter) h1Finish(s *httpfilter.Stream) {
	h := &s.Request
	for {
		err := f.pendErr
		f.pendErr = nil
		if err == nil && f.conn == nil {
			// The previous attempt failed before its connection was taken: start afresh.
			f.beginAttempt(h)
			if !f.h1Send(s, h, true) {
				return
			}
			continue
		}
		var kind failKind
		status := 0
		if err == nil {
			kind, status, err = f.h1Response(s)
			if kind == failNone && status == 0 {
				return // relayed, or answered
			}
		} else {
			kind = f.classify(err)
			f.report(kind, 0)
		}
		if f.retriable(s, kind, status) && f.nextAttempt(s, h) {
			s.Response.Reset()
			if !f.h1Send(s, h, true) {
				return
			}
			continue
		}
		if kind == failNone {
			// The last attempt's retriable response goes downstream as it is.
			f.h1Relay(s)
			return
		}
		f.failLocally(s, kind, err)
		return
	}
}

// connect gets a pooled or new connection. A request waiting for it counts as pending
// for the max_pending_requests circuit breaker.
func (f *filter) connect(s *httpfilter.Stream) (failKind, error) {
	if !f.breakers().TryPending() {
		return failOverflow, upstream.ErrOverflow
	}
	var conn *upstream.Conn
	var err error
	if f.replaySafe(s) {
		conn, err = f.pool.GetReplayable(s.Ctx)
	} else {
		conn, err = f.pool.Get(s.Ctx)
	}
	f.breakers().DonePending()
	if err != nil {
		if errors.Is(err, upstream.ErrOverflow) {
			return failOverflow, err
		}
		return failConnect, err
	}
	f.conn = conn
	f.reused = conn.Requests > 1
	cc, _ := conn.Codec.(*http1.ClientConn)
	if cc == nil {
		cc = http1.NewClientConn(conn.Conn, http1.Limits{})
		conn.Codec = cc
	}
	f.cc = cc
	conn.SetRequestDeadline(f.attemptDeadline())
	return failNone, nil
}

// h1Response reads the upstream response head. A response the retry policy may retry is
// left unrelayed: it returns failNone with its status, and the caller retries it or relays
// it with h1Relay. Any other response is relayed here (status 0). A failure before the
// response head returns its kind, already reported to the host.
func (f *filter) h1Response(s *httpfilter.Stream) (failKind, int, error) {
	if f.idleTimeout() > 0 {
		f.conn.SetReadDeadline(f.nextDeadline())
	}
	err := f.cc.ReadResponse(&s.Response, &f.rh, s.Request.Method)
	if err != nil && f.replayable(s, err) {
		// The upstream closed the kept-alive connection as the request arrived, without
		// answering: it never handled the request, so send it once more on a fresh
		// connection, as Go's Transport does for idempotent requests.
		f.releaseConn(false)
		var kind failKind
		if kind, err = f.connect(s); kind != failNone {
			f.report(kind, 0)
			return kind, 0, err
		}
		err = f.cc.WriteRequestHead(&s.Request, f.framing)
		if err == nil {
			err = f.cc.Flush()
		}
		if err == nil {
			if f.idleTimeout() > 0 {
				f.conn.SetReadDeadline(f.nextDeadline())
			}
			err = f.cc.ReadResponse(&s.Response, &f.rh, s.Request.Method)
		}
	}
	if err != nil {
		kind := f.classify(err)
		f.report(kind, 0)
		return kind, 0, err
	}
	status := s.Response.Status
	f.report(failNone, status)
	if f.rp != nil && f.rp.RetriableResponse(f.retryOn, status, &s.Response) {
		return failNone, status, nil
	}
	f.h1Relay(s)
	return failNone, 0, nil
}

// h1Relay streams the response whose head h1Response read downstream.
func (f *filter) h1Relay(s *httpfilter.Stream) {
	if f.retried {
		f.st.RqRetrySuccess.Inc()
	}
	s.Info.FirstUpstreamRx = time.Now()
	end := f.rh.Framing.Kind == http1.None || (f.rh.Framing.Kind == http1.Length && f.rh.Framing.Length == 0)
	f.finishResponseHeaders(s)
	s.EncodeHeaders(end)
	for !end {
		if s.Ctx.Err() != nil {
			// The client is gone (or the stream was reset): stop reading a response nobody
			// receives; the connection is mid-body, so it cannot be reused.
			f.failed = true
			f.releaseConn(false)
			return
		}
		if f.idleTimeout() > 0 {
			f.conn.SetReadDeadline(f.nextDeadline())
		}
		chunk, last, err := f.cc.ReadBody()
		if err != nil {
			f.upstreamFailed(s, err, true)
			return
		}
		end = last
		if end {
			f.cc.Trailers(&s.ResponseTrailers)
			if s.ResponseTrailers.Len() > 0 {
				s.EncodeBody(chunk, false)
				s.EncodeTrailers()
				break
			}
		}
		s.EncodeBody(chunk, end)
	}
	f.reusable = f.rh.KeepAlive && f.cc.Reusable()
	if !f.reusable {
		f.releaseConn(false)
	}
	// A reusable connection is returned in OnStreamDone (see there).
}

// replayable reports whether a request that failed with err before any response byte may
// be sent again: only a bodiless idempotent request on a reused connection whose peer
// closed it.
func (f *filter) replayable(s *httpfilter.Stream, err error) bool {
	if !f.reused || f.framing.Kind != http1.None {
		return false
	}
	switch s.Request.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
	default:
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// replaySafe reports whether h1Response would replay the request should a reused connection
// turn out closed (see replayable), which lets the pool skip its liveness check.
func (f *filter) replaySafe(s *httpfilter.Stream) bool {
	if f.framing.Kind != http1.None || s.Request.Has("upgrade") {
		return false
	}
	switch s.Request.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// idleTimeout is the shorter of the route's idle_timeout and the retry policy's
// per_try_idle_timeout (0: none).
func (f *filter) idleTimeout() time.Duration {
	d := f.fw.IdleTimeout
	if f.rp != nil && f.rp.PerTryIdleTimeout > 0 && (d == 0 || f.rp.PerTryIdleTimeout < d) {
		d = f.rp.PerTryIdleTimeout
	}
	return d
}

func (f *filter) nextDeadline() time.Time {
	d := time.Now().Add(f.idleTimeout())
	if ad := f.attemptDeadline(); !ad.IsZero() && ad.Before(d) {
		return ad
	}
	return d
}
