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
	ctx := s.Ctx
	var cancel context.CancelFunc
	if !f.deadline.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, f.deadline)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
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
	if n, ok := contentLength(h); ok {
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
		resp, err := pool.RoundTripH2(req)
		f.h2Response(s, resp, err)
		return httpfilter.Stop
	}
	// With a body still to come, the round trip runs beside the body pump.
	a.started = true
	go func() {
		defer close(a.done)
		resp, err := pool.RoundTripH2(req)
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
			s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_response_timeout")
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
	s.Response.Reset()
	s.Response.Status = resp.StatusCode
	for k, vs := range resp.Header {
		name := strings.ToLower(k)
		for _, v := range vs {
			s.Response.Add(name, v)
		}
	}
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
