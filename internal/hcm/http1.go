package hcm

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/codec/http1"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// maxDiscardBody is how much of an unread request body is drained to keep a connection
// alive after the response was produced early (a local reply); beyond it the connection is
// closed instead, as Envoy does.
const maxDiscardBody = 64 << 10

// ServeConn implements listener.ChainHandler: it picks the codec and serves the connection
// until it closes or drains.
func (c *Config) ServeConn(ctx context.Context, nc net.Conn, info listener.ConnInfo) {
	c.stats.connOpened()
	defer c.stats.connClosed(time.Now())
	if info.ALPN == "h2" {
		c.serveH2(ctx, nc, info)
		return
	}
	if c.model.Codec == model.CodecHTTP2 {
		c.serveH2(ctx, nc, info)
		return
	}
	var sniffed []byte
	if c.model.Codec == model.CodecAuto && info.TLS == nil { // h2c with prior knowledge
		b, h2, err := sniffPreface(nc, c.idleTimeout())
		if err != nil {
			nc.Close()
			return
		}
		if h2 {
			c.serveH2(ctx, &prefixConn{Conn: nc, prefix: b}, info)
			return
		}
		sniffed = b
	}
	c.serveH1(ctx, nc, info, sniffed)
}

func (c *Config) idleTimeout() time.Duration {
	if c.model.IdleTimeout > 0 {
		return c.model.IdleTimeout
	}
	return time.Hour
}

// h1conn is one downstream HTTP/1.1 connection.
type h1conn struct {
	cfg       *Config
	nc        net.Conn
	sc        *http1.ServerConn
	info      listener.ConnInfo
	rh        http1.RequestHead
	keepAlive bool
	closed    bool
	hijacked  bool
	framing   http1.Framing

	// idle is set while waiting for the next request and drained once the listener drains:
	// set in opposite orders by the two sides, so a connection can't slip into waiting
	// after the drain looked at it.
	idle    atomic.Bool
	drained atomic.Bool

	// The read deadline in force, as armRead left it. dlDirty is set when onDrain moves
	// the deadline from another goroutine: from then on every armRead sets it.
	rdl     time.Time
	rdlSpan time.Duration
	dlKnown bool
	dlDirty atomic.Bool

	// A peer watch (watch.go) in progress, and whether it saw the client leave.
	watchers sync.WaitGroup
	watching atomic.Bool
	peerGone atomic.Bool
}

// readSlack bounds how late armRead lets a connection's idle or stream timeout fire.
const readSlack = time.Second

// armRead sets the read deadline to d (zero: none); span is the timeout d was computed
// from. Setting a deadline re-arms the poller's timers, which costs more than the rest of a
// small request's bookkeeping, while an idle timeout moves forward by only the time between
// requests: a deadline in force that is no earlier than d and at most an eighth of the
// timeout (and readSlack) later is kept.
func (hc *h1conn) armRead(d time.Time, span time.Duration) {
	if hc.dlKnown && !hc.dlDirty.Load() {
		if d.IsZero() {
			if hc.rdl.IsZero() {
				return
			}
		} else if !hc.rdl.IsZero() && !hc.rdl.Before(d) && hc.rdl.Sub(d) <= min(readSlack, hc.rdlSpan/8) {
			return
		}
	}
	if !d.IsZero() {
		slack := max(min(readSlack, span/8), 0)
		d = d.Add(slack)
		span += slack
	}
	hc.rdl, hc.rdlSpan, hc.dlKnown = d, span, true
	hc.nc.SetReadDeadline(d)
}

// onDrain wakes a connection that waits for its next request, so it closes now rather than
// when the drain time runs out; a busy one closes after its response.
func (hc *h1conn) onDrain() {
	hc.drained.Store(true)
	if hc.idle.Load() {
		hc.dlDirty.Store(true)
		hc.nc.SetReadDeadline(time.Now())
	}
}

func (c *Config) serveH1(ctx context.Context, nc net.Conn, info listener.ConnInfo, sniffed []byte) {
	hc := &h1conn{cfg: c, nc: nc, info: info, sc: http1.NewServerConn(nc, c.limits)}
	defer codecEnded(c.stats.codecStarted(false))
	hc.sc.Prime(sniffed)
	if info.DrainContext != nil {
		stop := context.AfterFunc(info.DrainContext, hc.onDrain)
		defer stop()
	}
	defer func() {
		if !hc.hijacked {
			hc.sc.Release()
			nc.Close()
		}
	}()
	for !hc.closed {
		if !hc.serveOne(ctx) {
			return
		}
	}
}

func (hc *h1conn) draining() bool {
	if hc.drained.Load() {
		return true
	}
	if hc.info.Draining != nil {
		select {
		case <-hc.info.Draining:
			return true
		default:
		}
	}
	return hc.cfg.health != nil && hc.cfg.health()
}

// serveOne reads and answers one request; it reports whether the connection stays open.
func (hc *h1conn) serveOne(ctx context.Context) bool {
	cfg := hc.cfg
	idle := cfg.idleTimeout()
	hc.armRead(time.Now().Add(idle), idle)
	hc.idle.Store(true)
	if hc.drained.Load() {
		return false
	}
	// The stream is taken only once a request arrives: an idle connection holds no more
	// than its socket, its goroutine and this struct.
	if hc.sc.Wait() != nil {
		return false // closed, timed out or drained before sending anything
	}
	s := getStream(cfg, hc)
	defer s.release()
	s.Downstream = httpfilter.Downstream{
		RemoteAddr: hc.info.RemoteAddr, DirectRemoteAddr: hc.info.RemoteAddr,
		LocalAddr: hc.info.LocalAddr, TLS: hc.info.TLS, Secure: hc.info.TLS != nil,
	}
	err := hc.sc.ReadRequest(&s.Request, &hc.rh)
	hc.idle.Store(false)
	if err != nil {
		if hc.drained.Load() && hc.sc.Buffered() == 0 {
			return false
		}
		var he *http1.Error
		switch {
		case errors.As(err, &he):
			hc.keepAlive = false
			s.Downstream.Protocol = "HTTP/1.1"
			s.Info.ResponseFlags |= httpfilter.FlagDownstreamProtocolError
			s.localReplyEarly(he.Status, he.Reason)
		case errors.Is(err, os.ErrDeadlineExceeded) && hc.sc.Buffered() > 0:
			// A request started but did not arrive in time.
			hc.keepAlive = false
			s.localReplyEarly(408, "request_header_timeout")
		}
		return false
	}
	if hc.rh.Minor == 0 {
		s.Downstream.Protocol = "HTTP/1.0"
	} else {
		s.Downstream.Protocol = "HTTP/1.1"
	}
	hc.keepAlive = hc.rh.KeepAlive && !hc.draining()
	s.headRequest = s.Request.Method == "HEAD"
	if rerr := s.sanitizeRequest(); rerr.status != 0 {
		hc.keepAlive = false
		s.localReplyEarly(rerr.status, rerr.details)
		return false
	}
	end := hc.rh.Framing.Kind == http1.None || (hc.rh.Framing.Kind == http1.Length && hc.rh.Framing.Length == 0)
	if hc.rh.Expect100 {
		// As Envoy does by default: answer 100 Continue ourselves and do not forward Expect,
		// so upstreams that do not implement it cannot stall the request.
		s.Request.Del("expect")
		if !end {
			if err := hc.sc.WriteContinue(); err != nil {
				return false
			}
		}
	}
	s.begin(ctx)
	if !end {
		// Only body reads need the stream's deadline: a bodiless request reads nothing more
		// from the client until its response is done and the idle wait re-arms.
		var d time.Time
		var span time.Duration
		if t := cfg.model.StreamIdleTimeout; t > 0 {
			d, span = s.Info.Start.Add(t), t
		}
		if t := cfg.model.RequestTimeout; t > 0 && (d.IsZero() || t < span) {
			d, span = s.Info.Start.Add(t), t
		}
		hc.armRead(d, span)
	}
	if end {
		hc.watchable(s)
	}
	s.decodeHeaders(0, end)
	discarded := 0
	for !end {
		chunk, last, err := hc.sc.ReadBody()
		if err != nil {
			var he *http1.Error
			if errors.As(err, &he) && !s.respStarted {
				s.Info.ResponseFlags |= httpfilter.FlagDownstreamProtocolError
				s.SendLocalReply(&s.Stream, he.Status, statusText(he.Status), 0, "bad_request_body")
			} else if errors.Is(err, os.ErrDeadlineExceeded) && !s.respStarted {
				s.SendLocalReply(&s.Stream, 408, "request timeout", httpfilter.FlagStreamIdleTimeout, "request_timeout")
			} else {
				s.Info.ResponseFlags |= httpfilter.FlagDownstreamConnectionTermination
				if !s.respDone.Load() {
					s.resetResponse("downstream_remote_disconnect")
				}
			}
			hc.keepAlive = false
			return false
		}
		end = last
		if s.respDone.Load() {
			// The response went out early; drain a small remainder to keep the connection.
			if discarded += len(chunk); discarded > maxDiscardBody {
				hc.keepAlive = false
				break
			}
			continue
		}
		if end {
			hc.sc.Trailers(&s.RequestTrailers)
			if s.RequestTrailers.Len() > 0 {
				s.decodeBody(chunk, false)
				s.decodeTrailers()
				break
			}
		}
		s.decodeBody(chunk, end)
		if end {
			hc.watchable(s)
		}
	}
	if !s.waitResponse(s.Ctx) {
		hc.keepAlive = false
	}
	if hc.stopWatch(s) {
		// The client left; before its response was done, the stream ended for that.
		if !s.respDone.Load() {
			s.Info.ResponseFlags |= httpfilter.FlagDownstreamConnectionTermination
		}
		return false
	}
	if hc.hijacked {
		return false
	}
	return hc.keepAlive && !hc.closed
}

// localReplyEarly answers a request that never reached the filter chain.
func (s *stream) localReplyEarly(code int, details string) {
	s.Info.Start = time.Now()
	s.cfg.stats.requestStarted()
	s.Info.ResponseDetails = details
	s.Response.Reset()
	s.Response.Status = code
	body := statusText(code)
	s.Response.Add("content-type", "text/plain")
	s.Response.Add("content-length", itoa(len(body)))
	s.finishResponseHeaders()
	s.respStarted = true
	if s.ds.writeHeaders(s, false) == nil {
		s.ds.writeBody(s, s.bodyBytes(body), true)
	}
	s.complete()
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 408:
		return "Request Timeout"
	case 413:
		return "Payload Too Large"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}

// writeHeaders implements downstream. It decides the response framing from the headers as
// Envoy's HTTP/1 codec does: a Content-Length is honoured, an ended response gets
// "content-length: 0", anything else is chunked (or close-delimited for HTTP/1.0).
func (hc *h1conn) writeHeaders(s *stream, end bool) error {
	h := &s.Response
	status := h.Status
	noBody := status < 200 || status == 204 || status == 304
	var f http1.Framing
	switch {
	case status == 101:
		f = http1.Framing{Kind: http1.None}
	case noBody:
		h.Del("content-length")
		f = http1.Framing{Kind: http1.None}
	case h.Has("content-length"):
		n, ok := header.ParseDecimal(h.Value("content-length"))
		if !ok {
			// An unparseable upstream length must not reach the client as framing.
			h.Del("content-length")
			f = hc.streamingFraming()
		} else {
			f = http1.Framing{Kind: http1.Length, Length: n}
		}
	case end:
		if !s.headRequest {
			h.Set("content-length", "0")
		}
		f = http1.Framing{Kind: http1.Length}
	default:
		f = hc.streamingFraming()
	}
	if s.headRequest && f.Kind != http1.None {
		// The headers describe the GET response; no body follows.
		f = http1.Framing{Kind: http1.None}
	}
	if hc.draining() {
		hc.keepAlive = false
	}
	hc.framing = f
	if err := hc.sc.WriteResponseHead(h, f, hc.keepAlive); err != nil {
		hc.closed = true
		return err
	}
	// Defer the flush when a small body of known length follows at once: head and body then
	// leave in one write.
	if end || status == 101 || f.Kind != http1.Length || f.Length > 16<<10 {
		if err := hc.sc.Flush(); err != nil {
			hc.closed = true
			return err
		}
	}
	return nil
}

func (hc *h1conn) streamingFraming() http1.Framing {
	if hc.rh.Minor == 0 {
		hc.keepAlive = false
		return http1.Framing{Kind: http1.UntilClose}
	}
	return http1.Framing{Kind: http1.Chunked}
}

func (hc *h1conn) writeBody(s *stream, chunk []byte, end bool) error {
	if hc.framing.Kind == http1.None {
		if end {
			return hc.sc.Flush()
		}
		return nil
	}
	if len(chunk) > 0 {
		if err := hc.sc.WriteBody(chunk); err != nil {
			hc.closed = true
			return err
		}
	}
	if end {
		if err := hc.sc.WriteEnd(nil); err != nil {
			hc.closed = true
			return err
		}
		if hc.framing.Kind == http1.UntilClose {
			hc.keepAlive = false
		}
	}
	if err := hc.sc.Flush(); err != nil {
		hc.closed = true
		return err
	}
	return nil
}

func (hc *h1conn) writeTrailers(s *stream) error {
	var err error
	if hc.framing.Kind == http1.Chunked {
		err = hc.sc.WriteEnd(&s.ResponseTrailers)
	}
	if err == nil {
		err = hc.sc.Flush()
	}
	if err != nil {
		hc.closed = true
	}
	return err
}

func (hc *h1conn) reset(*stream) {
	hc.closed = true
	hc.keepAlive = false
	hc.nc.Close()
}

// hijack hands the raw connection to an upgrade tunnel.
func (hc *h1conn) hijack() (net.Conn, []byte, bool) {
	if hc.hijacked || hc.closed {
		return nil, nil, false
	}
	hc.hijacked = true
	conn, buffered := hc.sc.Hijack()
	// A tunnel lives as long as its peers want, as on the upstream side.
	conn.SetReadDeadline(time.Time{})
	return conn, buffered, true
}

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffPreface reads just enough to tell an HTTP/2 prior-knowledge connection from
// HTTP/1.1 and returns what it read.
func sniffPreface(nc net.Conn, timeout time.Duration) ([]byte, bool, error) {
	nc.SetReadDeadline(time.Now().Add(timeout))
	defer nc.SetReadDeadline(time.Time{})
	var arr [len(h2Preface)]byte
	buf := arr[:0]
	for len(buf) < len(h2Preface) {
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if string(buf) != h2Preface[:len(buf)] {
			return buf, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	return buf, true, nil
}

// prefixConn replays bytes that were read to sniff the protocol.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
