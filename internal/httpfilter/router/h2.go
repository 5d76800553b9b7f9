package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// h2Attempt is one request to an HTTP/2 upstream. The request body streams through a pipe
// so that the response can start before the request ends (gRPC bidirectional streams); the
// response is relayed from its own goroutine in that case.
type h2Attempt struct {
	pw      *io.PipeWriter // written by the stream's goroutine only
	pr      *io.PipeReader // closed by the round trip's goroutine when it fails
	resp    *http.Response
	trailer http.Header
	cancel  context.CancelFunc
	done    chan struct{}
	started bool
}

func (a *h2Attempt) trailers(t *header.Map) {
	if a.trailer == nil {
		a.trailer = http.Header{}
	}
	for _, fl := range t.Fields() {
		a.trailer.Add(fl.Name, fl.Value)
	}
}

// close ends the attempt. When the round trip runs on its own goroutine, close waits for it:
// the stream and the filter are recycled as soon as OnStreamDone returns, and that goroutine
// still uses both until it finishes (a downstream reset ends the stream while the upstream
// is still answering).
func (a *h2Attempt) close() {
	if a.pw != nil {
		a.pw.CloseWithError(errors.New("stream closed"))
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.started {
		<-a.done
	}
	if a.resp != nil {
		a.resp.Body.Close()
	}
}

// h2Start sends the request headers to an HTTP/2 upstream.
func (f *filter) h2Start(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	f.beginAttempt(h)
	ctx, cancel := f.h2Context(s)
	a := &h2Attempt{cancel: cancel, done: make(chan struct{})}
	f.h2 = a
	scheme := "http"
	if f.pool.TLS() {
		scheme = "https"
	}
	req := &http.Request{
		Method:     h.Method,
		URL:        &url.URL{Scheme: scheme, Host: h.Authority, Opaque: "//" + h.Authority + pathOnly(h.Path), RawQuery: queryOnly(h.Path)},
		Host:       h.Authority,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     make(http.Header, h.Len()),
	}
	for _, fl := range h.Fields() {
		if fl.Name == "host" {
			continue
		}
		req.Header[fl.Name] = append(req.Header[fl.Name], fl.Value)
	}
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		req.ContentLength = n
	} else if !end {
		req.ContentLength = -1
	}
	if end {
		req.Body = http.NoBody
	} else {
		pr, pw := io.Pipe()
		a.pw, a.pr = pw, pr
		req.Body = pr
		// Trailers are declared up front so the transport will send those we collect.
		req.Trailer = http.Header{}
		a.trailer = req.Trailer
	}
	req = req.WithContext(ctx)
	pool := f.pool
	if end {
		f.h2Exchange(s, h, req)
		return httpfilter.Stop
	}
	// With a body still to come, the round trip runs beside the body pump.
	a.started = true
	go func() {
		defer close(a.done)
		resp, err := pool.RoundTripH2(req)
		f.h2Report(resp, err)
		f.h2Response(s, resp, err)
	}()
	return httpfilter.Continue
}

// h2Body writes one request body chunk into the pipe feeding the upstream stream.
func (f *filter) h2Body(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	a := f.h2
	if a.pw == nil {
		return httpfilter.Stop
	}
	if len(chunk) > 0 {
		if _, err := a.pw.Write(chunk); err != nil {
			// The round trip ended (it reports its own error); stop feeding it.
			return httpfilter.Stop
		}
	}
	if end {
		a.pw.Close()
		a.pw = nil
		return httpfilter.Stop
	}
	return httpfilter.Continue
}

// h2Response relays an HTTP/2 upstream response downstream.
func (f *filter) h2Response(s *httpfilter.Stream, resp *http.Response, err error) {
	a := f.h2
	if err != nil {
		// The request body pump sees this as a write error and stops. f.failed is left
		// alone: the stream's goroutine reads it concurrently.
		if a.pr != nil {
			a.pr.CloseWithError(err)
		}
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
		return
	}
	a.resp = resp
	s.Info.FirstUpstreamRx = time.Now()
	if f.retried {
		f.st.RqRetrySuccess.Inc()
	}
	copyResponseHead(s, resp)
	if resp.ContentLength >= 0 && !s.Response.Has("content-length") && resp.Body == http.NoBody {
		s.Response.Add("content-length", "0")
	}
	end := resp.Body == http.NoBody
	drained := false
	if !end && resp.ContentLength == 0 {
		// A HEADERS frame that ended the stream (gRPC's trailers-only answer) still comes
		// with a Body, not http.NoBody. Relayed as headers then an empty end of body, a gRPC
		// client never sees its status: it reads one only from headers that end the stream
		// or from trailers. With a zero length nothing but trailers can follow, so reading
		// now does not hold the headers back.
		var one [1]byte
		if n, rerr := resp.Body.Read(one[:]); n == 0 && rerr == io.EOF {
			drained = true
			end = len(resp.Trailer) == 0
		}
	}
	f.finishResponseHeaders(s)
	s.EncodeHeaders(end)
	if end {
		return
	}
	buf := bodyBufPool.Get().(*[]byte)
	defer bodyBufPool.Put(buf)
	for !drained {
		n, rerr := resp.Body.Read(*buf)
		if n > 0 {
			s.EncodeBody((*buf)[:n], false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if errors.Is(rerr, context.DeadlineExceeded) {
				s.Info.ResponseFlags |= httpfilter.FlagUpstreamRequestTimeout
			} else {
				s.Info.ResponseFlags |= httpfilter.FlagUpstreamReset
			}
			s.SendLocalReply(502, "", 0, "upstream_reset_after_response_started")
			return
		}
	}
	if len(resp.Trailer) > 0 {
		for k, vs := range resp.Trailer {
			name := strings.ToLower(k)
			for _, v := range vs {
				s.ResponseTrailers.Add(name, v)
			}
		}
		s.EncodeTrailers()
		return
	}
	s.EncodeBody(nil, true)
}

func pathOnly(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

func queryOnly(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[i+1:]
	}
	return ""
}

func copyResponseHead(s *httpfilter.Stream, resp *http.Response) {
	s.Response.Reset()
	s.Response.Status = resp.StatusCode
	for k, vs := range resp.Header {
		name := strings.ToLower(k)
		for _, v := range vs {
			s.Response.Add(name, v)
		}
	}
}

// h2Context is an attempt's context: the stream's, bounded by the attempt's deadlines.
func (f *filter) h2Context(s *httpfilter.Stream) (context.Context, context.CancelFunc) {
	if d := f.attemptDeadline(); !d.IsZero() {
		return context.WithDeadline(s.Ctx, d)
	}
	return context.WithCancel(s.Ctx)
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
func (f *filter) h2Report(resp *http.Response, err error) {
	if err != nil {
		f.report(f.h2Kind(err), 0)
		return
	}
	f.report(failNone, resp.StatusCode)
}

// h2Exchange runs a request without a body against an HTTP/2 upstream, retrying it as the
// retry policy allows, and relays the final answer.
func (f *filter) h2Exchange(s *httpfilter.Stream, h *header.Map, req *http.Request) {
	for {
		resp, err := f.pool.RoundTripH2(req)
		f.h2Report(resp, err)
		kind, status := failNone, 0
		if err != nil {
			kind = f.h2Kind(err)
		} else if f.rp != nil {
			copyResponseHead(s, resp)
			if f.rp.RetriableResponse(f.retryOn, resp.StatusCode, &s.Response) {
				status = resp.StatusCode
			}
		}
		if (err != nil || status != 0) && f.retriable(s, kind, status) && f.nextAttempt(s, h) {
			if resp != nil {
				resp.Body.Close()
			}
			s.Response.Reset()
			f.h2.cancel()
			ctx, cancel := f.h2Context(s)
			f.h2.cancel = cancel
			if f.pool.Protocol() != upstream.HTTP2 {
				// A retry landed on a host whose pool speaks HTTP/1.1 (a downstream-protocol
				// cluster without h2): not expected within one cluster; answer with the failure.
				f.h2Response(s, resp, errors.New("upstream protocol changed"))
				return
			}
			req = req.WithContext(ctx)
			if f.fw.IncludeAttemptCount {
				req.Header.Set("x-envoy-attempt-count", h.Value("x-envoy-attempt-count"))
			}
			continue
		}
		if err != nil {
			f.h2Fail(s, kind, err)
			return
		}
		f.h2Response(s, resp, nil)
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
