package router

import (
	"errors"
	"time"

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
	f.h1x.Prepare(h, end)
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
		if replay && f.reqDone {
			err = f.h1x.WriteRequest(h, f.bodyBytes(), f.requestTrailers(s))
		} else {
			err = f.h1x.WriteHeaders(h, f.reqDone)
			if err == nil && replay {
				if b := f.bodyBytes(); len(b) > 0 {
					err = f.h1x.WriteBody(b)
				}
			}
		}
		if err == nil {
			return true
		}
		if stale == 0 && f.h1x.Reused() && (f.reqDone || replay) {
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
	return f.h1x.WriteEnd(f.requestTrailers(s))
}

// requestTrailers is the request's trailers, nil when it has none.
func (f *filter) requestTrailers(s *httpfilter.Stream) *header.Map {
	if s.RequestTrailers.Len() > 0 {
		return &s.RequestTrailers
	}
	return nil
}

// h1Finish runs once the whole request has arrived: it ends the request upstream, reads the
// response and retries the request as the policy allows.
func (f *filter) h1Finish(s *httpfilter.Stream) {
	h := &s.Request
	for {
		err := f.pendErr
		f.pendErr = nil
		if err == nil && !f.h1x.Connected() {
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
			f.relay(s, &f.h1x, f.respEnd)
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
	err := f.h1x.Connect(s.Ctx, f.pool, f.attemptDeadline())
	f.breakers().DonePending()
	if err != nil {
		if errors.Is(err, upstream.ErrOverflow) {
			return failOverflow, err
		}
		return failConnect, err
	}
	return failNone, nil
}

// h1Response reads the upstream response head. A response the retry policy may retry is
// left unrelayed: it returns failNone with its status, and the caller retries it or relays
// it with relay. Any other response is relayed here (status 0). A failure before the
// response head returns its kind, already reported to the host.
func (f *filter) h1Response(s *httpfilter.Stream) (failKind, int, error) {
	if f.idleTimeout() > 0 {
		f.h1x.SetReadDeadline(f.nextDeadline())
	}
	end, err := f.h1x.ReadResponse(&s.Response)
	if err != nil && f.h1x.Replayable(err) {
		// The upstream closed the kept-alive connection as the request arrived, without
		// answering: it never handled the request, so send it once more on a fresh
		// connection, as Go's Transport does for idempotent requests.
		f.releaseConn(false)
		var kind failKind
		if kind, err = f.connect(s); kind != failNone {
			f.report(kind, 0)
			return kind, 0, err
		}
		err = f.h1x.WriteHeaders(&s.Request, true)
		if err == nil {
			if f.idleTimeout() > 0 {
				f.h1x.SetReadDeadline(f.nextDeadline())
			}
			end, err = f.h1x.ReadResponse(&s.Response)
		}
	}
	if err != nil {
		kind := f.classify(err)
		f.report(kind, 0)
		return kind, 0, err
	}
	status := s.Response.Status
	f.report(failNone, status)
	f.respEnd = end
	if f.rp != nil && f.rp.RetriableResponse(f.retryOn, status, &s.Response) {
		return failNone, status, nil
	}
	f.relay(s, &f.h1x, end)
	return failNone, 0, nil
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
