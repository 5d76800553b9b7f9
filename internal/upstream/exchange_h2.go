package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// bodyBufPool holds the buffers HTTP/2 response bodies are read into.
var bodyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errStreamClosed ends the request body of an attempt cancelled before it ended.
var errStreamClosed = errors.New("upstream: stream closed")

// H2 is an Exchange over an HTTP/2 pool (net/http's client connections). A request whose
// body is still to come streams it through a pipe, so the response can start before the
// request ends (gRPC bidirectional streams): ReadResponse then runs on another goroutine than
// the writes. The zero value is ready for Prepare.
type H2 struct {
	pool    *Pool
	ctx     context.Context
	cancel  context.CancelFunc
	req     *http.Request
	pw      *io.PipeWriter // written by the writing goroutine only
	pr      *io.PipeReader // closed by the reading goroutine when the round trip fails
	trailer http.Header    // the request trailers, declared up front
	resp    *http.Response
	buf     *[]byte
	drained bool  // the response body was read to its end already
	eof     bool  // the last Read returned data and io.EOF
	err     error // the last Read returned data and this error
}

// Prepare implements Exchange; an HTTP/2 request frames itself.
func (x *H2) Prepare(*header.Map, bool) {}

// Connect implements Exchange: the attempt's context is ctx bounded by deadline; the
// connection is taken (or dialed) by ReadResponse's round trip.
func (x *H2) Connect(ctx context.Context, p *Pool, deadline time.Time) error {
	x.release()
	x.pool = p
	if !deadline.IsZero() {
		x.ctx, x.cancel = context.WithDeadline(ctx, deadline)
	} else {
		x.ctx, x.cancel = context.WithCancel(ctx)
	}
	return nil
}

// WriteHeaders implements Exchange: it builds the request; nothing is sent before
// ReadResponse starts the round trip. Without end, the body goes through a pipe.
func (x *H2) WriteHeaders(h *header.Map, end bool) error {
	req := x.newRequest(h)
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		req.ContentLength = n
	} else if !end {
		req.ContentLength = -1
	}
	if end {
		req.Body = http.NoBody
	} else {
		x.pr, x.pw = io.Pipe()
		req.Body = x.pr
		// Trailers are declared up front so the transport will send those we collect.
		req.Trailer = http.Header{}
		x.trailer = req.Trailer
	}
	x.req = req
	return nil
}

// WriteRequest implements Exchange.
func (x *H2) WriteRequest(h *header.Map, body []byte, trailers *header.Map) error {
	req := x.newRequest(h)
	req.ContentLength = int64(len(body))
	req.Body = http.NoBody
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if trailers != nil && trailers.Len() > 0 {
		req.Trailer = http.Header{}
		addFields(req.Trailer, trailers)
	}
	x.req = req
	return nil
}

func (x *H2) newRequest(h *header.Map) *http.Request {
	scheme := "http"
	if x.pool.TLS() {
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
	return req.WithContext(x.ctx)
}

func addFields(dst http.Header, m *header.Map) {
	for _, fl := range m.Fields() {
		dst.Add(fl.Name, fl.Value)
	}
}

// WriteBody implements Exchange. It fails once the round trip has ended.
func (x *H2) WriteBody(chunk []byte) error {
	if x.pw == nil {
		return errStreamClosed
	}
	if len(chunk) == 0 {
		return nil
	}
	_, err := x.pw.Write(chunk)
	return err
}

// WriteEnd implements Exchange.
func (x *H2) WriteEnd(trailers *header.Map) error {
	if x.pw == nil {
		return errStreamClosed
	}
	if trailers != nil && trailers.Len() > 0 {
		if x.trailer == nil {
			x.trailer = http.Header{}
		}
		addFields(x.trailer, trailers)
	}
	x.pw.Close()
	x.pw = nil
	return nil
}

// ReadResponse implements Exchange: it runs the round trip. When it fails, a request body
// still being written fails too.
func (x *H2) ReadResponse(resp *header.Map) (bool, error) {
	r, err := x.pool.RoundTripH2(x.req)
	if err != nil {
		if x.pr != nil {
			x.pr.CloseWithError(err)
		}
		return false, err
	}
	x.resp = r
	resp.Reset()
	resp.Status = r.StatusCode
	for k, vs := range r.Header {
		name := strings.ToLower(k)
		for _, v := range vs {
			resp.Add(name, v)
		}
	}
	if r.ContentLength >= 0 && !resp.Has("content-length") && r.Body == http.NoBody {
		resp.Add("content-length", "0")
	}
	end := r.Body == http.NoBody
	if !end && r.ContentLength == 0 {
		// A HEADERS frame that ended the stream (gRPC's trailers-only answer) still comes
		// with a Body, not http.NoBody. Relayed as headers then an empty end of body, a gRPC
		// client never sees its status: it reads one only from headers that end the stream
		// or from trailers. With a zero length nothing but trailers can follow, so reading
		// now does not hold the headers back.
		var one [1]byte
		if n, rerr := r.Body.Read(one[:]); n == 0 && rerr == io.EOF {
			x.drained = true
			end = len(r.Trailer) == 0
		}
	}
	return end, nil
}

// ReadBody implements Exchange. The last piece is always empty.
func (x *H2) ReadBody() ([]byte, bool, error) {
	if x.drained || x.eof {
		return nil, true, nil
	}
	if x.err != nil {
		return nil, false, x.err
	}
	if x.buf == nil {
		x.buf = bodyBufPool.Get().(*[]byte)
	}
	n, err := x.resp.Body.Read(*x.buf)
	if n > 0 {
		// The data goes downstream first; the end or the failure comes with the next call.
		if err == io.EOF {
			x.eof = true
		} else {
			x.err = err
		}
		return (*x.buf)[:n], false, nil
	}
	if err == io.EOF {
		return nil, true, nil
	}
	return nil, false, err
}

// Trailers implements Exchange.
func (x *H2) Trailers(t *header.Map) {
	for k, vs := range x.resp.Trailer {
		name := strings.ToLower(k)
		for _, v := range vs {
			t.Add(name, v)
		}
	}
}

// SetReadDeadline implements Exchange; the attempt's context bounds an HTTP/2 attempt.
func (x *H2) SetReadDeadline(time.Time) error { return nil }

// Cancel ends the attempt's request body and context; a round trip or body read in progress
// on another goroutine then fails. It is safe to call while ReadResponse or ReadBody runs.
func (x *H2) Cancel() {
	if x.pw != nil {
		x.pw.CloseWithError(errStreamClosed)
	}
	if x.cancel != nil {
		x.cancel()
	}
}

// Close implements Exchange. It must not run while ReadResponse or ReadBody does (see
// Cancel).
func (x *H2) Close(bool) {
	x.Cancel()
	x.release()
}

func (x *H2) release() {
	if x.cancel != nil {
		x.cancel()
	}
	if x.resp != nil {
		x.resp.Body.Close()
	}
	if x.buf != nil {
		bodyBufPool.Put(x.buf)
	}
	*x = H2{}
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

var _ Exchange = (*H2)(nil)
