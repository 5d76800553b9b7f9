package hcm

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/http2"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/listener"
)

// serveH2 serves an HTTP/2 connection (h2 via ALPN, or h2c with prior knowledge) with the
// gateway's codec (h2codec.go), or, with HTTP2.NetHTTPServer, with golang.org/x/net/http2's
// server: framing, flow control and HPACK from x/net, each stream adapted to the same
// filter chain HTTP/1.1 uses.
func (c *Config) serveH2(ctx context.Context, nc net.Conn, info listener.ConnInfo) {
	if !c.model.HTTP2.NetHTTPServer {
		c.serveH2Codec(ctx, nc, info)
		return
	}
	h2o := c.model.HTTP2
	srv := &http2.Server{
		MaxConcurrentStreams:         h2o.MaxConcurrentStreams,
		MaxUploadBufferPerStream:     int32(h2o.InitialStreamWindowSize),
		MaxUploadBufferPerConnection: int32(h2o.InitialConnectionWindowSize),
		IdleTimeout:                  c.idleTimeout(),
		MaxDecoderHeaderTableSize:    4096,
	}
	if srv.MaxConcurrentStreams == 0 {
		// Envoy's default is 2^31-1; a bound is kinder to memory and still generous.
		srv.MaxConcurrentStreams = 1024
	}
	base := &http.Server{
		MaxHeaderBytes:    int(c.model.MaxRequestHeadersBytes),
		ReadHeaderTimeout: c.model.RequestHeadersTimeout,
		ErrorLog:          nil,
	}
	if err := http2.ConfigureServer(base, srv); err != nil {
		nc.Close()
		return
	}
	if info.DrainContext != nil {
		// GOAWAY, then in-flight streams finish; the context only delivers the signal.
		stop := context.AfterFunc(info.DrainContext, func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			base.Shutdown(sctx)
			cancel()
		})
		defer stop()
	}
	defer codecEnded(c.stats.codecStarted(true))
	srv.ServeConn(nc, &http2.ServeConnOpts{
		Context:    ctx,
		BaseConfig: base,
		Handler:    &h2handler{cfg: c, info: info},
	})
}

type h2handler struct {
	cfg  *Config
	info listener.ConnInfo
}

// h2writer is the downstream side of one HTTP/2 stream.
type h2writer struct {
	w       http.ResponseWriter
	flusher http.Flusher
	body    io.Closer
	ended   atomic.Bool // the response is complete or reset
	resetMu sync.Mutex
	reset_  bool
}

// finish records that the response is over and unblocks a pending read of the request body:
// an HTTP/2 stream may end its response while the client still sends (a gRPC server that
// fails a bidirectional call), and the response's end (trailers, END_STREAM) goes out only
// when the handler returns.
func (hw *h2writer) finish() {
	if !hw.ended.Swap(true) {
		hw.body.Close()
	}
}

var h2BodyPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

var h2writerPool = sync.Pool{New: func() any { return new(h2writer) }}

func (h *h2handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := h.cfg
	hw := h2writerPool.Get().(*h2writer)
	hw.w, hw.body = w, r.Body
	hw.flusher, _ = w.(http.Flusher)
	s := getStream(cfg, hw)
	defer func() {
		s.release()
		*hw = h2writer{}
		h2writerPool.Put(hw)
	}()
	s.Downstream = httpfilter.Downstream{
		RemoteAddr: h.info.RemoteAddr, DirectRemoteAddr: h.info.RemoteAddr,
		LocalAddr: h.info.LocalAddr, TLS: r.TLS, Secure: r.TLS != nil, Protocol: "HTTP/2",
	}
	q := &s.Request
	q.Method = r.Method
	q.Authority = r.Host
	q.Path = r.RequestURI
	if r.Method == "CONNECT" {
		q.Path = ""
	}
	count := 0
	for k, vs := range r.Header {
		name := lowerName(k)
		for _, v := range vs {
			q.Add(name, v)
			count++
		}
	}
	if cfg.model.MaxHeadersCount > 0 && count > int(cfg.model.MaxHeadersCount) {
		s.localReplyEarly(431, "too_many_headers")
		return
	}
	s.headRequest = r.Method == "HEAD"
	if rerr := s.sanitizeRequest(); rerr.status != 0 {
		s.localReplyEarly(rerr.status, rerr.details)
		return
	}
	s.begin(r.Context())
	// x/net gives every request a Body, even one whose HEADERS frame ended the stream; its
	// ContentLength is 0 then (and for an explicit "content-length: 0"), -1 when the length is
	// unknown. Treating a bodiless request as one with a body would forward a GET upstream
	// with an empty chunked body: an extra write, and no replay on a stale connection.
	end := r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	s.decodeHeaders(0, end)
	if !end {
		buf := h2BodyPool.Get().(*[]byte)
		for {
			n, err := r.Body.Read(*buf)
			if err == io.EOF {
				if len(r.Trailer) > 0 {
					if n > 0 {
						s.decodeBody((*buf)[:n], false)
					}
					for k, vs := range r.Trailer {
						for _, v := range vs {
							s.RequestTrailers.Add(lowerName(k), v)
						}
					}
					s.decodeTrailers()
				} else {
					s.decodeBody((*buf)[:n], true)
				}
				break
			}
			if err != nil {
				if hw.ended.Load() {
					break // finish closed the body: the response is already complete
				}
				s.Info.ResponseFlags |= httpfilter.FlagDownstreamConnectionTermination
				if !s.respDone.Load() {
					s.resetResponse("downstream_remote_disconnect")
				}
				break
			}
			if n > 0 {
				s.decodeBody((*buf)[:n], false)
			}
			if s.reqStopped || s.respDone.Load() {
				break
			}
		}
		h2BodyPool.Put(buf)
	}
	s.waitResponse(r.Context())
	hw.resetMu.Lock()
	reset := hw.reset_
	hw.resetMu.Unlock()
	if reset {
		// Tells the HTTP/2 server to send RST_STREAM instead of ending the stream cleanly.
		panic(http.ErrAbortHandler)
	}
}

func (hw *h2writer) writeHeaders(s *stream, end bool) error {
	copyFields(hw.w.Header(), &s.Response, "")
	status := s.Response.Status
	if status == 0 {
		status = 200
	}
	hw.w.WriteHeader(status)
	if !end {
		// As for HTTP/1.1: when a small body of known length follows at once, HEADERS and
		// DATA leave together when the handler ends instead of in two flushes.
		if n, ok := header.ParseDecimal(s.Response.Value("content-length")); ok && n <= 16<<10 && s.Response.Status != 101 {
			return nil
		}
		return hw.flush()
	}
	hw.finish()
	return nil
}

func (hw *h2writer) flush() error {
	if hw.flusher == nil {
		return http.ErrNotSupported
	}
	hw.flusher.Flush()
	return nil
}

// copyFields adds h's fields to hdr, names prefixed with prefix. The strings are copied,
// all into one allocation: fields may alias buffers that are reused once the stream ends
// (an upstream connection's read buffer, a pooled filter's scratch), while the HPACK
// encoder keeps the strings it indexes in its dynamic table for the connection's life.
func copyFields(hdr http.Header, h *header.Map, prefix string) {
	fields := h.Fields()
	if len(fields) == 0 {
		return
	}
	n := 0
	for _, f := range fields {
		n += len(prefix) + len(f.Name) + len(f.Value)
	}
	arena := make([]byte, 0, n)
	vals := make([]string, len(fields))
	for i, f := range fields {
		start := len(arena)
		arena = append(arena, prefix...)
		arena = append(arena, f.Name...)
		name := unsafe.String(unsafe.SliceData(arena[start:]), len(arena)-start)
		if prefix == "" {
			name = serverKey(name)
		}
		start = len(arena)
		arena = append(arena, f.Value...)
		vals[i] = unsafe.String(unsafe.SliceData(arena[start:]), len(arena)-start)
		if prev, ok := hdr[name]; ok {
			hdr[name] = append(prev, vals[i])
		} else {
			hdr[name] = vals[i : i+1 : i+1]
		}
	}
}

// serverKey returns net/http's canonical key for the fields the HTTP/2 server looks up in
// the response header map: under a lower-case key it would not see them, and would add a
// second Date, a sniffed Content-Type or its own Content-Length.
func serverKey(name string) string {
	switch name {
	case "content-length":
		return "Content-Length"
	case "content-type":
		return "Content-Type"
	case "date":
		return "Date"
	}
	return name
}

// lowerName turns a canonical header key (net/http's form) back into the lower-case wire
// name, without allocating for common names.
func lowerName(k string) string {
	if v, ok := commonLower[k]; ok {
		return v
	}
	return strings.ToLower(k)
}

var commonLower = func() map[string]string {
	names := []string{
		"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
		"access-control-request-headers", "access-control-request-method", "age",
		"authorization", "cache-control", "content-disposition", "content-encoding",
		"content-length", "content-type", "cookie", "date", "etag", "expect", "forwarded",
		"from", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout", "if-match",
		"if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
		"last-modified", "origin", "pragma", "range", "referer", "te", "traceparent",
		"tracestate", "user-agent", "via", "x-forwarded-for", "x-forwarded-host",
		"x-forwarded-proto", "x-real-ip", "x-request-id", "baggage", "priority",
		"sec-fetch-dest", "sec-fetch-mode", "sec-fetch-site", "sec-fetch-user",
		"sec-ch-ua", "sec-ch-ua-mobile", "sec-ch-ua-platform", "upgrade-insecure-requests",
		"x-envoy-attempt-count", "x-envoy-expected-rq-timeout-ms", "x-b3-traceid",
		"x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[textproto.CanonicalMIMEHeaderKey(n)] = n
	}
	return m
}()

func (hw *h2writer) writeBody(s *stream, chunk []byte, end bool) error {
	if len(chunk) > 0 {
		if _, err := hw.w.Write(chunk); err != nil {
			return err
		}
	}
	if !end {
		return hw.flush()
	}
	hw.finish()
	return nil
}

func (hw *h2writer) writeTrailers(s *stream) error {
	copyFields(hw.w.Header(), &s.ResponseTrailers, http.TrailerPrefix)
	hw.finish()
	return nil
}

func (hw *h2writer) reset(*stream) {
	hw.resetMu.Lock()
	hw.reset_ = true
	hw.resetMu.Unlock()
	hw.finish()
}
