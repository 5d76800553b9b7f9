package http1

import (
	"net"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// ClientConn is the upstream side of an HTTP/1.1 connection: it writes a request and reads its
// response, one exchange at a time (no pipelining). It is not safe for concurrent use, except
// that the request body may be written while the response is read, which a server answering
// early needs.
type ClientConn struct {
	rd reader
	wr writer

	method    string
	pending   bool // a request was written whose response has not been read to its end
	reqClose  bool // the request said Connection: close
	keepAlive bool // the last response allowed reuse
	gone      error
}

// NewClientConn wraps a connection to an upstream. lim's zero fields take the defaults.
func NewClientConn(nc net.Conn, lim Limits) *ClientConn {
	c := &ClientConn{}
	c.rd.init(nc, lim)
	c.wr.nc = nc
	return c
}

// WriteRequestHead writes "METHOD target HTTP/1.1", a Host field from h.Authority, then h's
// fields in order with the framing fields for f. The target is h.Path ("/" when empty), or
// h.Authority for CONNECT. Host, Content-Length and Transfer-Encoding fields in h are
// replaced. Nothing is sent before Flush unless the buffer fills.
func (c *ClientConn) WriteRequestHead(h *header.Map, f Framing) error {
	if c.gone != nil {
		return c.gone
	}
	wr := &c.wr
	if wr.err != nil {
		return wr.err
	}
	method, target := h.Method, h.Path
	if method == "CONNECT" {
		target = h.Authority
	} else if target == "" {
		target = "/"
	}
	if !validToken(method) || f.Kind == UntilClose {
		return ErrInvalidField
	}
	for i := 0; i < len(target); i++ {
		if !isTarget[target[i]] {
			return ErrInvalidField
		}
	}
	wr.ensure()
	wr.writeString(method)
	wr.writeString(" ")
	wr.writeString(target)
	wr.writeString(" HTTP/1.1\r\n")
	if err := wr.field("host", h.Authority); err != nil {
		return c.failWrite(err)
	}
	if err := wr.fields(h, true, false, true); err != nil {
		return c.failWrite(err)
	}
	wr.framing(f)
	wr.writeString("\r\n")
	wr.discard = false

	c.reqClose = false
	h.Values("connection", func(v string) bool {
		for rest := strBytes(v); ; {
			var e []byte
			e, rest = nextListElem(rest)
			if equalFoldBytes(e, "close") {
				c.reqClose = true
			}
			if rest == nil {
				return true
			}
		}
	})
	c.method = method
	c.pending = true
	return wr.err
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isToken[s[i]] {
			return false
		}
	}
	return len(s) > 0
}

func (c *ClientConn) failWrite(err error) error {
	c.wr.buf = c.wr.buf[:0]
	c.wr.err = err
	return err
}

// WriteBody writes a piece of the request body, chunk-encoded when the head said Chunked.
func (c *ClientConn) WriteBody(chunk []byte) error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.body(chunk)
}

// WriteEnd ends the request body; trailers (chunked only) may be nil.
func (c *ClientConn) WriteEnd(trailers *header.Map) error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.end(trailers)
}

// Flush sends everything written so far.
func (c *ClientConn) Flush() error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.flush()
}

// ReadResponse reads the response to the request written last. Interim 1xx responses are
// skipped, except 101, which ends the exchange (Hijack follows). method decides, with the
// status, whether a body follows (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304, a tunnel
// for a 2xx to CONNECT. Errors for malformed responses are *Error with Status 502. io.EOF
// means the server closed before sending anything, which for a reused connection usually
// means it timed the connection out and the request may be retried if idempotent.
func (c *ClientConn) ReadResponse(h *header.Map, rh *ResponseHead, method string) error {
	if c.gone != nil {
		return c.gone
	}
	rd := &c.rd
	if rd.err != nil {
		return rd.err
	}
	if !rd.bodyDone {
		if err := rd.discardBody(); err != nil {
			return rd.fail(err)
		}
	}
	rd.startMessage()
	lim := rd.lim
	for {
		n, err := rd.readHead(func(b []byte) (int, error) { return ParseResponseHead(b, h, rh, method, lim) })
		if err != nil {
			h.Reset()
			return rd.fail(err)
		}
		if rh.Status >= 200 || rh.Status == 101 {
			rd.headDone(n, rh.Framing)
			c.keepAlive = rh.KeepAlive
			c.pending = !rd.bodyDone
			if rh.Status == 101 {
				c.keepAlive = false
			}
			return nil
		}
		rd.r += n
	}
}

// ReadBody returns the next piece of the response body, dechunked, and whether it is the
// last. The slice aliases the read buffer and is valid until the next call.
func (c *ClientConn) ReadBody() ([]byte, bool, error) {
	if c.gone != nil {
		return nil, false, c.gone
	}
	b, end, err := c.rd.readBody()
	if end {
		c.pending = false
	}
	return b, end, err
}

// Trailers copies the trailer fields of the response body just read to its end into t.
func (c *ClientConn) Trailers(t *header.Map) { t.CopyFrom(&c.rd.trailers) }

// Reusable reports whether another request may be sent: the exchange completed in both
// directions, both sides allowed keep-alive, and the server sent nothing unasked.
func (c *ClientConn) Reusable() bool {
	rd := &c.rd
	return c.gone == nil && rd.err == nil && c.wr.err == nil && !c.pending &&
		rd.bodyDone && !c.wr.inBody && c.keepAlive && !c.reqClose && rd.r == rd.w
}

// Hijack hands the connection over after a 101 or a CONNECT's 2xx, with any bytes already
// read past the response head (a copy). The ClientConn is unusable afterwards.
func (c *ClientConn) Hijack() (net.Conn, []byte) {
	if c.gone != nil {
		return nil, nil
	}
	_ = c.wr.flush()
	c.wr.release()
	rest := c.rd.detach()
	c.gone = ErrHijacked
	return c.rd.nc, rest
}

// Release returns the connection's buffers to the pools. It does not close the connection.
func (c *ClientConn) Release() {
	if c.gone != nil {
		return
	}
	c.wr.release()
	c.rd.release()
	c.gone = ErrReleased
}
