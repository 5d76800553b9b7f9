package hcm

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// downstream is what a codec offers the stream engine for sending the response.
type downstream interface {
	writeHeaders(s *stream, end bool) error
	writeBody(s *stream, chunk []byte, end bool) error
	writeTrailers(s *stream) error
	// reset aborts the response after headers were sent (close for HTTP/1.1, RST_STREAM for
	// HTTP/2), so the client cannot mistake a truncated body for a whole one.
	reset(s *stream)
}

// stream is the connection manager's per-request state. It embeds the Stream filters see and
// implements httpfilter.Sink for it. Streams are pooled: reset clears every field that a
// request sets.
type stream struct {
	httpfilter.Stream

	cfg   *Config
	table *route.Table // loaded once at the stream's start
	entry *route.Entry // the selected route (s.Route), nil when none matched
	ds    downstream
	// filters are the stream's filters by chain position; nil where a filter does not run
	// on this stream's route (disabled in the chain and not enabled by the route, or
	// disabled by it).
	filters []httpfilter.Filter

	// Request-side iteration.
	reqStopped  bool // a filter returned Stop: deliver nothing more
	reqBufferAt int  // index of the filter that asked for the whole body, or -1
	reqHeadsAt  int  // first filter whose OnRequestHeaders has not run yet (when buffering)
	reqBuf      []byte

	// Response-side iteration.
	respStarted  bool
	respDone     atomic.Bool // set from the router's goroutine when it relays an HTTP/2 upstream
	respBufferAt int
	respBuf      []byte
	headRequest  bool

	// done is signalled when the response is complete, for codecs that must wait for a
	// response produced on another goroutine (a streaming upstream).
	mu      sync.Mutex
	doneCh  chan struct{}
	waiting bool

	ctx     *streamCtx // s.Ctx once the stream began
	pathBuf []byte
	idBuf   [36]byte
	scratch []byte
	xffBuf  []byte // the X-Forwarded-For list the request header aliases
}

var streamPool = sync.Pool{New: func() any {
	s := &stream{doneCh: make(chan struct{}, 1), ctx: new(streamCtx)}
	return s
}}

func getStream(cfg *Config, ds downstream) *stream {
	s := streamPool.Get().(*stream)
	s.cfg = cfg
	s.ds = ds
	s.reqBufferAt = -1
	s.respBufferAt = -1
	s.SetSink(s)
	return s
}

// release runs OnStreamDone and returns the stream to the pool.
func (s *stream) release() {
	// Logged before OnStreamDone, which hands the router's upstream connection back to its
	// pool while the response headers still point into its buffer; a response that never
	// completed may still be written by a router goroutine until OnStreamDone stops it.
	done := s.respDone.Load()
	if done {
		s.observe()
	}
	if len(s.filters) > 0 {
		for _, i := range s.cfg.chain.done {
			if f := s.filters[i]; f != nil {
				f.OnStreamDone(&s.Stream)
			}
		}
	}
	if !done {
		s.observe()
	}
	s.cfg.stats.finish(s)
	ctx := s.ctx
	if s.Ctx != nil {
		ctx.cancel()
		if ctx.reusable() {
			ctx.parent, ctx.peer, ctx.watched = nil, nil, false
			ctx.canceled.Store(false)
		} else {
			ctx = new(streamCtx)
		}
	}
	s.Request.Reset()
	s.RequestTrailers.Reset()
	s.Response.Reset()
	s.ResponseTrailers.Reset()
	clear(s.filters)
	*s = stream{
		Stream: httpfilter.Stream{
			Request: s.Request, RequestTrailers: s.RequestTrailers,
			Response: s.Response, ResponseTrailers: s.ResponseTrailers,
		},
		filters: s.filters[:0], reqBuf: s.reqBuf[:0], respBuf: s.respBuf[:0],
		doneCh: s.doneCh, pathBuf: s.pathBuf[:0], scratch: s.scratch[:0], xffBuf: s.xffBuf[:0], ctx: ctx,
	}
	select { // a stale completion signal must not leak into the next request
	case <-s.doneCh:
	default:
	}
	streamPool.Put(s)
}

// begin selects the route and creates the per-stream filters the route runs. The request
// headers must be complete and sanitised.
func (s *stream) begin(ctx context.Context) {
	s.Info.Start = time.Now()
	s.cfg.stats.requestStarted()
	s.startCtx(ctx)
	s.AllowWebSocket = s.cfg.model.UpgradeWebSocket
	s.BufferLimit = s.cfg.bufLim
	s.ResponseBufferLimit = s.cfg.bufLim
	s.table = s.cfg.routes.Load()
	s.selectRoute()
	s.makeFilters()
	s.startSpan()
}

// phase returns a phase's chain positions, or none before the stream's filters exist (a
// local reply to a request that never began).
func (s *stream) phase(positions []int) []int {
	if len(s.filters) == 0 {
		return nil
	}
	return positions
}

// makeFilters makes the filters of the chain that run on the selected route, each with its
// most specific per-route config. A disabled filter runs where the route (or its virtual
// host) enables it; an enabled one is skipped where the route disables it.
func (s *stream) makeFilters() {
	e := s.entry
	for i := range s.cfg.chain.filters {
		cf := &s.cfg.chain.filters[i]
		var o route.Override
		if e != nil {
			o = e.FilterOverride(cf.slot)
		}
		run := !cf.disabled
		switch o.Mode {
		case route.OverrideEnable:
			run = true
		case route.OverrideDisable:
			run = false
		}
		var f httpfilter.Filter
		if run {
			f = cf.cfg.NewFilter(&s.Stream, o.Config)
		}
		s.filters = append(s.filters, f)
	}
}

// startCtx makes s.Ctx a child of parent (see streamCtx).
func (s *stream) startCtx(parent context.Context) {
	s.ctx.parent = parent
	s.Ctx = s.ctx
}

func (s *stream) selectRoute() {
	_, s.entry = s.table.Select(&s.Request)
	if s.entry != nil {
		s.Route = s.entry
		s.Info.RouteName = s.entry.Name
	} else {
		s.Route = nil // never an interface holding a nil *route.Entry
	}
}

// decodeHeaders runs the request-headers phase from filter index from.
func (s *stream) decodeHeaders(from int, end bool) {
	for _, i := range s.phase(s.cfg.chain.reqHeaders) {
		if i < from {
			continue
		}
		if s.reqStopped || s.respDone.Load() {
			return
		}
		f := s.filters[i]
		if f == nil {
			continue
		}
		switch f.OnRequestHeaders(&s.Stream, &s.Request, end) {
		case httpfilter.Stop:
			s.reqStopped = true
			return
		case httpfilter.StopAndBuffer:
			if !end {
				s.reqBufferAt = i
				s.reqHeadsAt = i + 1
				return
			}
		}
	}
}

// decodeBody delivers one request body chunk.
func (s *stream) decodeBody(chunk []byte, end bool) {
	s.Info.BytesReceived += int64(len(chunk))
	if end {
		s.Info.LastDownstreamRx = time.Now()
	}
	if s.reqStopped || s.respDone.Load() {
		return
	}
	if s.reqBufferAt >= 0 {
		if len(s.reqBuf)+len(chunk) > s.BufferLimit {
			s.SendLocalReply(&s.Stream, 413, "payload too large", 0, "request_payload_too_large")
			s.reqStopped = true
			return
		}
		s.reqBuf = append(s.reqBuf, chunk...)
		if !end {
			return
		}
		s.flushRequestBuffer()
		return
	}
	s.decodeBodyFrom(0, chunk, end)
}

// flushRequestBuffer delivers a completely buffered body: to the filters up to and including
// the one that asked for it, then resumes the headers phase after it, then the rest.
func (s *stream) flushRequestBuffer() {
	at, heads := s.reqBufferAt, s.reqHeadsAt
	s.reqBufferAt = -1
	if heads > 0 {
		// Headers stopped at filter heads-1: it and those before it get the body now.
		if !s.decodeBodyRange(0, heads, s.reqBuf, true) {
			return
		}
		s.reqHeadsAt = 0
		s.decodeHeaders(heads, false)
		if s.reqStopped || s.respDone.Load() || s.reqBufferAt >= 0 {
			if s.reqBufferAt >= 0 { // a later filter wants to buffer too: it has it all already
				s.reqBufferAt = -1
				s.decodeBodyFrom(heads, s.reqBuf, true)
			}
			return
		}
		s.decodeBodyFrom(heads, s.reqBuf, true)
		return
	}
	s.decodeBodyFrom(at, s.reqBuf, true)
}

func (s *stream) decodeBodyFrom(from int, chunk []byte, end bool) {
	s.decodeBodyRange(from, len(s.cfg.chain.filters), chunk, end)
}

// decodeBodyRange runs OnRequestBody for filters [from, to) and reports whether iteration
// may continue past to.
func (s *stream) decodeBodyRange(from, to int, chunk []byte, end bool) bool {
	for _, i := range s.phase(s.cfg.chain.reqBody) {
		if i < from {
			continue
		}
		if i >= to {
			break
		}
		if s.reqStopped || s.respDone.Load() {
			return false
		}
		f := s.filters[i]
		if f == nil {
			continue
		}
		st := f.OnRequestBody(&s.Stream, chunk, end)
		if b, ok := s.Stream.TakeBody(chunk); ok {
			// The replacement lives in reqBuf, where a flush of a buffered body reads it.
			s.reqBuf = append(s.reqBuf[:0], b...)
			chunk = s.reqBuf
		}
		switch st {
		case httpfilter.Stop:
			s.reqStopped = true
			return false
		case httpfilter.StopAndBuffer:
			if !end {
				s.reqBufferAt = i
				s.reqBuf = append(s.reqBuf[:0], chunk...)
				return false
			}
		}
	}
	return true
}

// decodeTrailers delivers request trailers, which end the request.
func (s *stream) decodeTrailers() {
	s.Info.LastDownstreamRx = time.Now()
	if s.reqStopped || s.respDone.Load() {
		return
	}
	if s.reqBufferAt >= 0 {
		// Trailers end the body: hand over what was buffered first, not marked as the end.
		at := s.reqBufferAt
		s.reqBufferAt = -1
		if !s.decodeBodyRange(at, len(s.cfg.chain.filters), s.reqBuf, false) {
			return
		}
	}
	for _, i := range s.phase(s.cfg.chain.reqTrailers) {
		if s.reqStopped || s.respDone.Load() {
			return
		}
		if f := s.filters[i]; f != nil {
			if f.OnRequestTrailers(&s.Stream, &s.RequestTrailers) == httpfilter.Stop {
				s.reqStopped = true
				return
			}
		}
	}
}

// EncodeHeaders implements httpfilter.Sink.
func (s *stream) EncodeHeaders(_ *httpfilter.Stream, end bool) {
	if s.respStarted || s.respDone.Load() {
		return
	}
	s.finishResponseHeaders()
	ph := s.phase(s.cfg.chain.respHeaders)
	for k := len(ph) - 1; k >= 0; k-- {
		i := ph[k]
		f := s.filters[i]
		if f == nil {
			continue
		}
		switch f.OnResponseHeaders(&s.Stream, &s.Response, end) {
		case httpfilter.Stop:
			return
		case httpfilter.StopAndBuffer:
			if !end {
				s.respBufferAt = i
				return
			}
		}
		if s.respDone.Load() {
			return // a filter replaced the response with a local reply
		}
	}
	s.sendHeaders(end)
}

func (s *stream) sendHeaders(end bool) {
	s.respStarted = true
	if err := s.ds.writeHeaders(s, end); err != nil {
		s.downstreamFailed()
		return
	}
	if end {
		s.complete()
	}
}

// EncodeBody implements httpfilter.Sink.
func (s *stream) EncodeBody(_ *httpfilter.Stream, chunk []byte, end bool) {
	if s.respDone.Load() {
		return
	}
	if s.respBufferAt >= 0 {
		if len(s.respBuf)+len(chunk) > s.ResponseBufferLimit {
			s.resetResponse("response_payload_too_large")
			return
		}
		s.respBuf = append(s.respBuf, chunk...)
		if !end {
			return
		}
		at := s.respBufferAt
		s.respBufferAt = -1
		// The filter that stopped the headers now sees the whole body, then headers and body
		// continue towards the codec.
		if _, ok := s.encodeBodyRange(at, s.respBuf, true); !ok {
			return
		}
		ph := s.phase(s.cfg.chain.respHeaders)
		for k := len(ph) - 1; k >= 0; k-- {
			i := ph[k]
			if i >= at {
				continue
			}
			if f := s.filters[i]; f != nil {
				if f.OnResponseHeaders(&s.Stream, &s.Response, false) == httpfilter.Stop || s.respDone.Load() {
					return
				}
			}
		}
		if _, ok := s.encodeBodyRange(at-1, s.respBuf, true); !ok {
			return
		}
		s.sendHeaders(false)
		s.sendBody(s.respBuf, true)
		return
	}
	chunk, ok := s.encodeBodyRange(len(s.cfg.chain.filters)-1, chunk, end)
	if !ok {
		return
	}
	if !s.respStarted {
		s.sendHeaders(false)
	}
	s.sendBody(chunk, end)
}

// encodeBodyRange runs OnResponseBody from filter index from down to 0. It returns the chunk
// that goes on (a filter may have replaced it; see Stream.ReplaceBody) and whether it does.
func (s *stream) encodeBodyRange(from int, chunk []byte, end bool) ([]byte, bool) {
	ph := s.phase(s.cfg.chain.respBody)
	for k := len(ph) - 1; k >= 0; k-- {
		i := ph[k]
		if i > from {
			continue
		}
		f := s.filters[i]
		if f == nil {
			continue
		}
		st := f.OnResponseBody(&s.Stream, chunk, end)
		if b, ok := s.Stream.TakeBody(chunk); ok {
			// The replacement lives in respBuf, where the callers read it on.
			s.respBuf = append(s.respBuf[:0], b...)
			chunk = s.respBuf
		}
		switch st {
		case httpfilter.Stop:
			return chunk, false
		case httpfilter.StopAndBuffer:
			if !end {
				s.respBufferAt = i
				s.respBuf = append(s.respBuf[:0], chunk...)
				return chunk, false
			}
		}
		if s.respDone.Load() {
			return chunk, false
		}
	}
	return chunk, true
}

func (s *stream) sendBody(chunk []byte, end bool) {
	if s.respDone.Load() {
		return
	}
	if s.headRequest {
		chunk = nil // HEAD responses carry the headers of a GET but never a body
	}
	s.Info.BytesSent += int64(len(chunk))
	if err := s.ds.writeBody(s, chunk, end); err != nil {
		s.downstreamFailed()
		return
	}
	if end {
		s.complete()
	}
}

// EncodeTrailers implements httpfilter.Sink.
func (s *stream) EncodeTrailers(_ *httpfilter.Stream) {
	if s.respDone.Load() {
		return
	}
	if s.respBufferAt >= 0 {
		at := s.respBufferAt
		s.respBufferAt = -1
		if _, ok := s.encodeBodyRange(at, s.respBuf, false); !ok {
			return
		}
		if !s.respStarted {
			s.sendHeaders(false)
		}
		s.sendBody(s.respBuf, false)
	}
	ph := s.phase(s.cfg.chain.respTrailers)
	for k := len(ph) - 1; k >= 0; k-- {
		if f := s.filters[ph[k]]; f != nil {
			if f.OnResponseTrailers(&s.Stream, &s.ResponseTrailers) == httpfilter.Stop {
				return
			}
		}
	}
	if !s.respStarted {
		s.sendHeaders(false)
	}
	if err := s.ds.writeTrailers(s); err != nil {
		s.downstreamFailed()
		return
	}
	s.complete()
}

// downstreamFailed ends a stream whose client can no longer be written to. Cancelling the
// stream's context tells the router to stop relaying: it would otherwise keep reading an
// upstream response nobody receives, to its end, which for an event stream is never.
func (s *stream) downstreamFailed() {
	s.Info.ResponseFlags |= httpfilter.FlagDownstreamConnectionTermination
	if s.Ctx != nil {
		s.ctx.cancel()
	}
	s.complete()
}

// SendLocalReply implements httpfilter.Sink: the proxy answers by itself. If the response
// has already started, the only honest thing left is to reset the stream.
func (s *stream) SendLocalReply(_ *httpfilter.Stream, code int, body string, flags httpfilter.ResponseFlags, details string) {
	s.Info.ResponseFlags |= flags
	if details != "" {
		s.Info.ResponseDetails = details
	}
	if s.respDone.Load() {
		return
	}
	if s.respStarted {
		s.resetResponse(details)
		return
	}
	s.respBufferAt = -1
	s.Response.Reset()
	s.ResponseTrailers.Reset()
	s.Response.Status = code
	if body != "" {
		s.Response.Add("content-type", "text/plain")
	}
	s.Response.Add("content-length", itoa(len(body)))
	end := body == ""
	s.EncodeHeaders(&s.Stream, end)
	if !end && !s.respDone.Load() {
		s.sendBody(s.bodyBytes(body), true)
	}
}

// bodyBytes turns a local reply body into bytes without keeping a reference to the caller's
// string beyond the write.
func (s *stream) bodyBytes(body string) []byte {
	s.scratch = append(s.scratch[:0], body...)
	return s.scratch
}

// ResponseStarted implements httpfilter.Sink.
func (s *stream) ResponseStarted(*httpfilter.Stream) bool { return s.respStarted }

// ClearRouteCache implements httpfilter.Sink.
func (s *stream) ClearRouteCache(*httpfilter.Stream) { s.selectRoute() }

func (s *stream) resetResponse(details string) {
	if details != "" {
		s.Info.ResponseDetails = details
	}
	s.Info.ResponseFlags |= httpfilter.FlagLocalReset
	s.ds.reset(s)
	if s.Ctx != nil {
		s.ctx.cancel() // nothing more can reach the client; see downstreamFailed
	}
	s.complete()
}

// complete marks the response finished and wakes a codec waiting for it.
func (s *stream) complete() {
	s.mu.Lock()
	s.respDone.Store(true)
	waiting := s.waiting
	s.mu.Unlock()
	if waiting {
		s.doneCh <- struct{}{}
	}
}

// waitResponse blocks until the response is complete or ctx ends.
func (s *stream) waitResponse(ctx context.Context) bool {
	s.mu.Lock()
	if s.respDone.Load() {
		s.mu.Unlock()
		return true
	}
	s.waiting = true
	s.mu.Unlock()
	select {
	case <-s.doneCh:
		return true
	case <-ctx.Done():
		return false
	}
}

// finishResponseHeaders applies what the connection manager adds to every response.
func (s *stream) finishResponseHeaders() {
	h := &s.Response
	upgrade := ""
	if h.Status == 101 {
		upgrade = h.Value("upgrade")
	}
	stripHopByHop(h, false)
	if upgrade != "" {
		h.Set("connection", "upgrade")
		h.Set("upgrade", upgrade)
	}
	if !s.cfg.model.ServerHeaderPassThrough || !h.Has("server") {
		h.Set("server", s.cfg.server)
	}
}

// itoa formats n, without allocating for the small values local replies use.
func itoa(n int) string {
	if n >= 0 && n < len(smallInts) {
		return smallInts[n]
	}
	return strconv.Itoa(n)
}

var smallInts = func() [1024]string {
	var a [1024]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

var _ httpfilter.Sink = (*stream)(nil)

// headerValueHasToken reports whether a comma-separated header value list contains token
// (case-insensitive), as Connection and Upgrade need.
func headerValueHasToken(h *header.Map, name, token string) bool {
	found := false
	h.Values(name, func(v string) bool {
		for len(v) > 0 {
			var part string
			if i := strings.IndexByte(v, ','); i >= 0 {
				part, v = v[:i], v[i+1:]
			} else {
				part, v = v, ""
			}
			if equalFoldTrim(part, token) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// equalFoldTrim compares an HTTP token case-insensitively after trimming optional whitespace.
// It folds ASCII only: strings.EqualFold folds Unicode too ("ſ" matches "s"), and a header
// value must not match a token through such a character.
func equalFoldTrim(s, token string) bool {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	if len(s) != len(token) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], token[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// hijacker is implemented by codecs that can give up their connection (HTTP/1.1).
type hijacker interface {
	hijack() (net.Conn, []byte, bool)
}

// Hijack implements httpfilter.Sink.
func (s *stream) Hijack(*httpfilter.Stream) (net.Conn, []byte, bool) {
	hj, ok := s.ds.(hijacker)
	if !ok {
		return nil, nil, false
	}
	c, buf, ok := hj.hijack()
	if ok {
		s.complete()
	}
	return c, buf, ok
}
