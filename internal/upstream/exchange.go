package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/nuncio-gw/nuncio/internal/codec/http1"
	"github.com/nuncio-gw/nuncio/internal/header"
)

// Exchange is one request and its response with an upstream host: the part of forwarding
// that depends on the protocol the host's pool speaks. H1 and H2 implement it; the router
// keeps one per stream and decides everything else (which host, retries, timeouts, what to
// answer when an attempt fails).
//
// A request is described once with Prepare; each attempt then runs Connect, the writes, the
// reads and Close, possibly on another pool of the same protocol. The request body may be
// written while the response is read (on another goroutine), which bidirectional streams
// need; otherwise an Exchange is not safe for concurrent use. Response fields and body
// chunks may alias the exchange's buffers: they stay valid until the next read or Close.
type Exchange interface {
	// Prepare describes the request the attempts send: its head h and whether it has no
	// body at all (end). It decides the body framing, which every attempt keeps.
	Prepare(h *header.Map, end bool)
	// Connect begins an attempt on p, bounded by deadline (zero: none) and by ctx while it
	// waits for a connection. Errors wrap ErrConnectFailed or ErrOverflow.
	Connect(ctx context.Context, p *Pool, deadline time.Time) error
	// WriteHeaders sends the request head; end says nothing more is written in this
	// attempt, so it goes out now.
	WriteHeaders(h *header.Map, end bool) error
	// WriteBody sends a piece of the request body.
	WriteBody(chunk []byte) error
	// WriteEnd ends the request body with trailers (nil: none) and sends what is pending.
	WriteEnd(trailers *header.Map) error
	// WriteRequest sends a whole request whose body is known: the head, body and trailers.
	WriteRequest(h *header.Map, body []byte, trailers *header.Map) error
	// ReadResponse waits for the final response head and puts it in resp (status and
	// lower-case fields); end says no body follows. Interim 1xx responses are skipped.
	ReadResponse(resp *header.Map) (end bool, err error)
	// ReadBody returns the next piece of the response body and whether it is the last.
	ReadBody() (chunk []byte, end bool, err error)
	// Trailers adds the response trailers, known once ReadBody has returned the last piece.
	Trailers(t *header.Map)
	// SetReadDeadline bounds the next reads (an idle timeout); HTTP/2 attempts are bounded
	// by their context only, and ignore it.
	SetReadDeadline(t time.Time) error
	// Close ends the attempt. With reuse, an HTTP/1.1 connection whose exchange completed
	// cleanly goes back to its pool for another request.
	Close(reuse bool)
}

// NewExchange returns an exchange for pools of protocol p. A caller on a hot path keeps an
// H1 value in its own pooled state instead.
func NewExchange(p Protocol) Exchange {
	if p == HTTP2 {
		return new(H2)
	}
	return new(H1)
}

// ProtocolError reports whether err says the upstream broke the protocol (a malformed
// response), as opposed to a transport failure.
func ProtocolError(err error) bool {
	var pe *http1.Error
	return errors.As(err, &pe)
}

// H1 is an Exchange over the connections of an HTTP/1.1 pool, with the gateway's own codec.
// The codec stays with its connection (Conn.Codec), so an exchange on a reused connection
// allocates nothing. The zero value is ready for Prepare.
type H1 struct {
	pool    *Pool
	conn    *Conn
	cc      *http1.ClientConn
	framing http1.Framing
	rh      http1.ResponseHead
	method  string
	reused  bool
	safe    bool // see Prepare
}

// Prepare implements Exchange. A request with a Content-Length keeps it, even zero: a POST
// without any length is refused by some servers (411). A request whose body is still to
// come and has no length is chunked; an HTTP/2 request ends its stream instead of declaring
// a length, which HTTP/1.1 needs for POST, PUT and PATCH.
func (x *H1) Prepare(h *header.Map, end bool) {
	x.framing = http1.Framing{Kind: http1.None}
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		x.framing = http1.Framing{Kind: http1.Length, Length: n}
	} else if !end {
		x.framing = http1.Framing{Kind: http1.Chunked}
	} else if h.Method == "POST" || h.Method == "PUT" || h.Method == "PATCH" {
		x.framing = http1.Framing{Kind: http1.Length}
	}
	x.method = h.Method
	x.safe = x.framing.Kind == http1.None && idempotent(h.Method) && !h.Has("upgrade")
}

// PrepareTunnel describes an Upgrade request (a WebSocket handshake): it has no body, and
// Hijack takes its connection when the upstream agrees.
func (x *H1) PrepareTunnel(h *header.Map) {
	x.framing = http1.Framing{Kind: http1.None}
	x.method = h.Method
	x.safe = false
}

// Connect implements Exchange: it takes a pooled or new connection. A request that may be
// sent again should the connection turn out closed (see Replayable) skips the pool's
// liveness check.
func (x *H1) Connect(ctx context.Context, p *Pool, deadline time.Time) error {
	x.pool = p
	var conn *Conn
	var err error
	if x.safe {
		conn, err = p.GetReplayable(ctx)
	} else {
		conn, err = p.Get(ctx)
	}
	if err != nil {
		return err
	}
	x.conn = conn
	x.reused = conn.Requests > 1
	cc, _ := conn.Codec.(*http1.ClientConn)
	if cc == nil {
		cc = http1.NewClientConn(conn.Conn, http1.Limits{})
		conn.Codec = cc
	}
	x.cc = cc
	conn.SetRequestDeadline(deadline)
	return nil
}

// Connected reports whether the attempt holds a connection.
func (x *H1) Connected() bool { return x.conn != nil }

// Reused reports whether the attempt's connection carried an earlier request.
func (x *H1) Reused() bool { return x.reused }

// WriteHeaders implements Exchange.
func (x *H1) WriteHeaders(h *header.Map, end bool) error {
	err := x.cc.WriteRequestHead(h, x.framing)
	if err == nil && end {
		err = x.cc.Flush()
	}
	return err
}

// WriteBody implements Exchange.
func (x *H1) WriteBody(chunk []byte) error { return x.cc.WriteBody(chunk) }

// WriteEnd implements Exchange.
func (x *H1) WriteEnd(trailers *header.Map) error {
	if err := x.cc.WriteEnd(trailers); err != nil {
		return err
	}
	return x.cc.Flush()
}

// WriteRequest implements Exchange.
func (x *H1) WriteRequest(h *header.Map, body []byte, trailers *header.Map) error {
	err := x.cc.WriteRequestHead(h, x.framing)
	if err == nil && len(body) > 0 {
		err = x.cc.WriteBody(body)
	}
	if err == nil {
		err = x.WriteEnd(trailers)
	}
	return err
}

// ReadResponse implements Exchange. A 101 ends the exchange (Hijack follows).
func (x *H1) ReadResponse(resp *header.Map) (bool, error) {
	if err := x.cc.ReadResponse(resp, &x.rh, x.method); err != nil {
		return false, err
	}
	f := x.rh.Framing
	return f.Kind == http1.None || (f.Kind == http1.Length && f.Length == 0), nil
}

// ReadBody implements Exchange: the chunk aliases the connection's read buffer.
func (x *H1) ReadBody() ([]byte, bool, error) { return x.cc.ReadBody() }

// Trailers implements Exchange.
func (x *H1) Trailers(t *header.Map) { x.cc.Trailers(t) }

// SetReadDeadline implements Exchange.
func (x *H1) SetReadDeadline(t time.Time) error { return x.conn.SetReadDeadline(t) }

// SetDeadline sets the connection's read and write deadline (zero: none), for a tunnel that
// lives as long as its peers want.
func (x *H1) SetDeadline(t time.Time) error { return x.conn.SetDeadline(t) }

// Reusable reports whether the connection may carry another request: the exchange
// completed in both directions and both sides allowed keep-alive.
func (x *H1) Reusable() bool { return x.rh.KeepAlive && x.cc.Reusable() }

// Close implements Exchange. A reusable connection should be closed only once the response
// head is no longer needed: its fields alias the connection's read buffer.
func (x *H1) Close(reuse bool) {
	if x.conn == nil {
		return
	}
	// A reusable connection keeps its request deadline: the next request moves it only when
	// it must (SetRequestDeadline), and the pool lifts it should it expire while idle.
	x.pool.Put(x.conn, reuse && x.Reusable())
	x.conn, x.cc = nil, nil
}

// Replayable reports whether a request that failed with err before any response byte may
// be sent again on a fresh connection: only a bodiless idempotent request on a reused
// connection whose peer closed it (it timed the connection out as the request arrived, so
// it never handled the request), as Go's Transport does.
func (x *H1) Replayable(err error) bool {
	if !x.reused || x.framing.Kind != http1.None || !idempotent(x.method) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// Hijack takes the connection out of its pool after a 101, for a tunnel that owns it from
// now on, with any bytes already read past the response head. The connection still counts
// against the pool's limits until it is closed.
func (x *H1) Hijack() (net.Conn, []byte) {
	_, buf := x.cc.Hijack()
	x.conn.Codec = nil
	nc := x.conn.Detach()
	x.conn, x.cc = nil, nil
	return nc, buf
}

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

var _ Exchange = (*H1)(nil)
