package hcm

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/http2/hpack"

	"github.com/nuncio-gw/nuncio/internal/codec/http2"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/listener"
)

// serveH2Codec serves an HTTP/2 connection with the gateway's own codec
// (internal/codec/http2). The codec's reading goroutine hands each request to a goroutine of
// its own, which runs the filter chain as the HTTP/1.1 path does (filters may block); the
// request body reaches it through a small queue whose bytes go back to the flow-control
// windows only once the filters took them.
func (c *Config) serveH2Codec(ctx context.Context, nc net.Conn, info listener.ConnInfo) {
	h2o := c.model.HTTP2
	// Envoy advertises its windows (256 MiB by default) but stops reading a connection whose
	// buffers pass per_connection_buffer_limit_bytes. This codec keeps reading (control frames
	// must be answered), so the windows are what bound the request body waiting for a slow
	// stream: at most the buffer limit per stream and four times it per connection.
	lim := uint32(max(c.bufLim, 64<<10))
	window := func(v, def, ceiling uint32) uint32 {
		if v == 0 {
			v = def
		}
		return min(v, ceiling)
	}
	cfg := http2.Config{
		MaxConcurrentStreams:        h2o.MaxConcurrentStreams,
		InitialStreamWindowSize:     window(h2o.InitialStreamWindowSize, 1<<20, lim),
		InitialConnectionWindowSize: window(h2o.InitialConnectionWindowSize, 16<<20, 4*lim),
		MaxHeaderListSize:           c.model.MaxRequestHeadersBytes,
		IdleTimeout:                 c.model.IdleTimeout,
	}
	hc := &h2conn{cfg: c, info: info, ctx: ctx}
	conn := http2.NewServerConn(nc, cfg, hc)
	if info.DrainContext != nil {
		stop := context.AfterFunc(info.DrainContext, conn.Shutdown)
		defer stop()
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer codecEnded(c.stats.codecStarted(true))
	conn.Serve()
	hc.streams.Wait()
}

// h2conn is the codec's handler for one connection.
type h2conn struct {
	cfg     *Config
	info    listener.ConnInfo
	ctx     context.Context
	streams sync.WaitGroup
}

// h2stream is the downstream side of one stream, shared by the codec's goroutine (request
// events) and the stream's goroutine (filters, response writes).
type h2stream struct {
	hc *h2conn
	cs *http2.Stream
	s  *stream

	// Set before the stream's goroutine starts.
	count   int  // request header fields
	reqDone bool // the HEADERS frame ended the request

	mu       sync.Mutex
	wake     chan struct{} // a request event or the response's end
	body     []byte        // request body received, not yet given to the filters
	spare    []byte
	end      bool // the request ended
	trailers []hpack.HeaderField
	peerGone bool // the client reset the stream or the connection ended
	begun    bool // s.Ctx exists
	discard  bool // the filters want no more of the body

	ended  atomic.Bool         // the response is complete or reset
	fields []hpack.HeaderField // response fields handed to the codec, reused
}

// h2streamPool recycles h2streams: the codec calls nothing for a stream after Release.
var h2streamPool = sync.Pool{New: func() any { return &h2stream{wake: make(chan struct{}, 1)} }}

func (hc *h2conn) OnHeaders(cs *http2.Stream, h *http2.Header, end bool) {
	hs := h2streamPool.Get().(*h2stream)
	hs.hc, hs.cs = hc, cs
	cs.Value = hs
	s := getStream(hc.cfg, hs)
	hs.s = s
	s.Downstream = httpfilter.Downstream{
		RemoteAddr: hc.info.RemoteAddr, DirectRemoteAddr: hc.info.RemoteAddr,
		LocalAddr: hc.info.LocalAddr, TLS: hc.info.TLS, Secure: hc.info.TLS != nil, Protocol: "HTTP/2",
	}
	q := &s.Request
	q.Method = h.Method
	q.Authority = h.Authority
	q.Path = h.Path
	if h.Method == "CONNECT" && h.Protocol == "" {
		q.Path = ""
	}
	var cookies []string
	for _, f := range h.Fields {
		switch f.Name {
		case "host":
			if q.Authority == "" {
				q.Authority = f.Value
			}
			continue
		case "cookie":
			// RFC 9113 §8.2.3: crumbs split across fields are one header upstream.
			cookies = append(cookies, f.Value)
			continue
		}
		q.Add(f.Name, f.Value)
	}
	if len(cookies) > 0 {
		q.Add("cookie", strings.Join(cookies, "; "))
	}
	hs.count, hs.reqDone = len(h.Fields), end
	hc.streams.Add(1)
	go hs.run()
}

func (hc *h2conn) OnData(cs *http2.Stream, p []byte, end bool) {
	hs := cs.Value.(*h2stream)
	hs.mu.Lock()
	if hs.discard {
		hs.mu.Unlock()
		cs.Consume(len(p))
		return
	}
	hs.body = append(hs.body, p...)
	hs.end = end
	hs.mu.Unlock()
	hs.signal()
}

func (hc *h2conn) OnTrailers(cs *http2.Stream, h *http2.Header) {
	hs := cs.Value.(*h2stream)
	hs.mu.Lock()
	hs.trailers = append(hs.trailers[:0], h.Fields...)
	hs.end = true
	hs.mu.Unlock()
	hs.signal()
}

func (hc *h2conn) OnReset(cs *http2.Stream, code http2.ErrCode) {
	hs, _ := cs.Value.(*h2stream)
	if hs == nil {
		return
	}
	hs.mu.Lock()
	hs.peerGone = true
	if hs.begun {
		hs.s.ctx.cancel()
	}
	hs.mu.Unlock()
	hs.signal()
}

func (hs *h2stream) signal() {
	select {
	case hs.wake <- struct{}{}:
	default:
	}
}

// run is the stream's goroutine: sanitise, run the request through the filters, wait for
// the response.
func (hs *h2stream) run() {
	hc := hs.hc
	defer hc.streams.Done()
	s := hs.s
	cfg := hc.cfg
	count, end := hs.count, hs.reqDone
	defer hs.done()
	if cfg.model.MaxHeadersCount > 0 && count > int(cfg.model.MaxHeadersCount) {
		s.localReplyEarly(431, "too_many_headers")
		return
	}
	s.headRequest = s.Request.Method == "HEAD"
	if rerr := s.sanitizeRequest(); rerr.status != 0 {
		s.localReplyEarly(rerr.status, rerr.details)
		return
	}
	s.begin(hc.ctx)
	hs.mu.Lock()
	hs.begun = true
	if hs.peerGone {
		s.ctx.cancel()
	}
	hs.mu.Unlock()
	s.decodeHeaders(0, end)
	if !end {
		hs.readBody()
	}
	s.waitResponse(s.Ctx)
}

// readBody hands the request body to the filters as it arrives.
func (hs *h2stream) readBody() {
	s := hs.s
	for {
		hs.mu.Lock()
		for len(hs.body) == 0 && !hs.end && !hs.peerGone && !hs.ended.Load() {
			hs.mu.Unlock()
			<-hs.wake
			hs.mu.Lock()
		}
		chunk := hs.body
		hs.body, hs.spare = hs.spare[:0], chunk
		end, gone := hs.end, hs.peerGone
		var trailers []hpack.HeaderField
		if end {
			trailers = hs.trailers
		}
		hs.mu.Unlock()
		switch {
		case gone && !end:
			s.Info.ResponseFlags |= httpfilter.FlagDownstreamConnectionTermination
			if !s.respDone.Load() {
				s.resetResponse("downstream_remote_disconnect")
			}
			return
		case hs.ended.Load() && len(chunk) == 0 && !end:
			hs.stopBody()
			return
		}
		if len(trailers) > 0 {
			if len(chunk) > 0 {
				s.decodeBody(chunk, false)
			}
			for _, f := range trailers {
				s.RequestTrailers.Add(f.Name, f.Value)
			}
			s.decodeTrailers()
		} else {
			s.decodeBody(chunk, end)
		}
		hs.cs.Consume(len(chunk))
		if end {
			return
		}
		if s.reqStopped || s.respDone.Load() {
			hs.stopBody()
			return
		}
	}
}

// stopBody gives back the window of body bytes nobody will read.
func (hs *h2stream) stopBody() {
	hs.mu.Lock()
	hs.discard = true
	n := len(hs.body)
	hs.body = hs.body[:0]
	hs.mu.Unlock()
	hs.cs.Consume(n)
}

// done ends the stream's goroutine: a request still being sent after its response ended is
// cut short (RFC 9113 §8.1), and the stream goes back to its pool.
func (hs *h2stream) done() {
	code := http2.ErrCodeCancel
	if hs.ended.Load() {
		code = http2.ErrCodeNo
	}
	hs.cs.Release(code)
	hs.s.release()
	hs.cs.Value = nil
	select { // a wake-up nobody took must not reach the next stream
	case <-hs.wake:
	default:
	}
	*hs = h2stream{
		wake: hs.wake, body: hs.body[:0], spare: hs.spare[:0],
		trailers: hs.trailers[:0], fields: hs.fields[:0],
	}
	if cap(hs.body) > 64<<10 || cap(hs.spare) > 64<<10 {
		hs.body, hs.spare = nil, nil
	}
	h2streamPool.Put(hs)
}

func (hs *h2stream) finish() {
	hs.ended.Store(true)
	hs.signal()
}

// h2fields copies a header map's fields for the codec, all strings in one allocation: they
// may alias buffers reused once the stream ends, while the HPACK encoder keeps the strings
// it indexes for the connection's life.
func h2fields(h *header.Map, dst []hpack.HeaderField) []hpack.HeaderField {
	fields := h.Fields()
	n := 0
	for _, f := range fields {
		n += len(f.Name) + len(f.Value)
	}
	arena := make([]byte, 0, n)
	for _, f := range fields {
		start := len(arena)
		arena = append(arena, f.Name...)
		name := unsafe.String(unsafe.SliceData(arena[start:]), len(arena)-start)
		start = len(arena)
		arena = append(arena, f.Value...)
		dst = append(dst, hpack.HeaderField{Name: name, Value: unsafe.String(unsafe.SliceData(arena[start:]), len(arena)-start)})
	}
	return dst
}

func (hs *h2stream) writeHeaders(s *stream, end bool) error {
	status := s.Response.Status
	if status == 0 {
		status = 200
	}
	hs.fields = h2fields(&s.Response, hs.fields[:0])
	h := http2.Header{Status: status, Fields: hs.fields}
	if err := hs.cs.WriteHeaders(&h, end); err != nil {
		return err
	}
	if end {
		hs.finish()
		return nil
	}
	// As for HTTP/1.1: when a small body of known length follows at once, HEADERS and DATA
	// leave together with the first write of the body; otherwise (a stream of events, a gRPC
	// call) the headers go now.
	if n, ok := header.ParseDecimal(s.Response.Value("content-length")); !ok || n > 16<<10 {
		hs.cs.Flush()
	}
	return nil
}

func (hs *h2stream) writeBody(s *stream, chunk []byte, end bool) error {
	if err := hs.cs.WriteData(chunk, end); err != nil {
		return err
	}
	if end {
		hs.finish()
	}
	return nil
}

func (hs *h2stream) writeTrailers(s *stream) error {
	hs.fields = h2fields(&s.ResponseTrailers, hs.fields[:0])
	h := http2.Header{Fields: hs.fields}
	err := hs.cs.WriteTrailers(&h)
	hs.finish()
	return err
}

func (hs *h2stream) reset(*stream) {
	hs.cs.Reset(http2.ErrCodeInternal)
	hs.finish()
}
