package http1

import (
	"net"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// ServerConn is the downstream side of an HTTP/1.1 connection: it reads requests and writes
// responses. Requests may be pipelined; responses must be written in request order, each
// after its request was read.
//
// A ServerConn is not safe for concurrent use, with one exception a proxy needs: the body of
// the current request may be read (ReadBody, Trailers) in one goroutine while its response is
// written in another. ReadRequest must not overlap a write.
type ServerConn struct {
	rd reader
	wr writer

	reqMinor int
	reqHEAD  bool
	closing  bool
	gone     error // ErrHijacked or ErrReleased
}

// NewServerConn wraps an accepted connection. lim's zero fields take the defaults.
func NewServerConn(nc net.Conn, lim Limits) *ServerConn {
	c := &ServerConn{}
	c.rd.init(nc, lim)
	c.wr.nc = nc
	return c
}

// ReadRequest reads the next request head into h and rh. It returns io.EOF when the client
// closed cleanly between requests, io.ErrUnexpectedEOF when it closed inside a head, and an
// *Error, whose Status is the answer to send before closing, for a malformed request. The
// strings in h stay valid until the next ReadRequest, Hijack or Release.
//
// If the previous request's body was not read, up to 256 KiB of it are skipped; beyond that
// ReadRequest returns ErrBodyPending and the connection must be closed.
func (c *ServerConn) ReadRequest(h *header.Map, rh *RequestHead) error {
	if c.gone != nil {
		return c.gone
	}
	rd := &c.rd
	if rd.err != nil {
		return rd.err
	}
	if c.closing {
		return ErrClosing
	}
	if !rd.bodyDone {
		if err := rd.discardBody(); err != nil {
			return rd.fail(err)
		}
	}
	rd.startMessage()
	lim := rd.lim
	n, err := rd.readHead(func(b []byte) (int, error) { return ParseRequestHead(b, h, rh, lim) })
	if err != nil {
		h.Reset()
		return rd.fail(err)
	}
	rd.headDone(n, rh.Framing)
	c.reqMinor = rh.Minor
	c.reqHEAD = h.Method == "HEAD"
	return nil
}

// Wait blocks until bytes of the next request have arrived (or are already buffered),
// holding no read buffer while it waits, so a caller can defer setting up per-request state
// until a request actually comes. It returns what ReadRequest would for a connection that
// closed or timed out before sending anything; ReadRequest reports everything else.
func (c *ServerConn) Wait() error {
	if c.gone != nil {
		return c.gone
	}
	rd := &c.rd
	if rd.err != nil || c.closing || !rd.bodyDone {
		return nil // ReadRequest has the answer, or must skip a body first
	}
	rd.startMessage()
	if rd.r < rd.w || rd.rerr != nil {
		return nil
	}
	return rd.fill()
}

// ReadBody returns the next piece of the request body, dechunked, and whether it is the
// last. The slice aliases the read buffer and is valid until the next call. At the end of a
// chunked body the trailers are available from Trailers.
func (c *ServerConn) ReadBody() (chunk []byte, end bool, err error) {
	if c.gone != nil {
		return nil, false, c.gone
	}
	return c.rd.readBody()
}

// Trailers copies the trailer fields of the request body just read to its end into t.
func (c *ServerConn) Trailers(t *header.Map) { t.CopyFrom(&c.rd.trailers) }

// WriteContinue sends "100 Continue" (RFC 9110 §15.2.1) at once, for a request with
// Expect100 whose body the server wants.
func (c *ServerConn) WriteContinue() error {
	if c.gone != nil {
		return c.gone
	}
	wr := &c.wr
	if wr.err != nil {
		return wr.err
	}
	wr.ensure()
	wr.writeString("HTTP/1.1 100 Continue\r\n\r\n")
	return wr.flush()
}

// WriteResponseHead writes the status line from h.Status and h's fields in order, with the
// framing fields for f and the Connection field keepAlive calls for. Content-Length and
// Transfer-Encoding fields in h are replaced by f's, except that for a response to HEAD or a
// 304 with f.Kind None they are kept as the representation's metadata.
//
// It adapts to the request: a chunked response to HTTP/1.0 is sent until close, and the
// body of a response to HEAD is dropped by WriteBody. A 1xx other than 101 is an interim
// response and may be followed by the final one. Nothing is sent before Flush unless the
// buffer fills.
func (c *ServerConn) WriteResponseHead(h *header.Map, f Framing, keepAlive bool) error {
	if c.gone != nil {
		return c.gone
	}
	wr := &c.wr
	if wr.err != nil {
		return wr.err
	}
	status := h.Status
	if status < 100 || status > 999 {
		return ErrInvalidStatus
	}
	wr.ensure()
	if status < 200 && status != 101 {
		wr.statusLine(status)
		if err := wr.fields(h, true, false, false); err != nil {
			return c.failWrite(err)
		}
		wr.writeString("\r\n")
		return wr.err
	}

	switch {
	case status == 101 || status == 204:
		f = Framing{}
	case c.reqMinor == 0 && f.Kind == Chunked:
		f = Framing{Kind: UntilClose}
	}
	if f.Kind == UntilClose {
		keepAlive = false
	}
	// HTTP/1.0 needs keep-alive said explicitly; close is always said. A 101 carries the
	// Connection: upgrade the handler put in h.
	ownConn := status != 101 && (!keepAlive || c.reqMinor == 0)
	keepFraming := f.Kind == None && (c.reqHEAD || status == 304)

	wr.statusLine(status)
	if err := wr.fields(h, !keepFraming, ownConn, false); err != nil {
		return c.failWrite(err)
	}
	wr.framing(f)
	if ownConn {
		if keepAlive {
			wr.writeString("connection: keep-alive\r\n")
		} else {
			wr.writeString("connection: close\r\n")
		}
	}
	wr.writeString("\r\n")
	wr.discard = c.reqHEAD || status == 304
	if !keepAlive && status != 101 {
		c.closing = true
	}
	return wr.err
}

// failWrite reports an error found while composing a head; the partial head is discarded.
func (c *ServerConn) failWrite(err error) error {
	c.wr.buf = c.wr.buf[:0]
	c.wr.err = err
	return err
}

func (wr *writer) statusLine(status int) {
	wr.room(64)
	wr.buf = append(wr.buf, "HTTP/1.1 "...)
	wr.buf = append(wr.buf, header.StatusString(status)...)
	wr.buf = append(wr.buf, ' ')
	wr.buf = append(wr.buf, reasonPhrase(status)...)
	wr.buf = append(wr.buf, "\r\n"...)
}

// WriteBody writes a piece of the response body, chunk-encoded when the head said Chunked.
// It fails with ErrBodyLength past the announced Content-Length.
func (c *ServerConn) WriteBody(chunk []byte) error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.body(chunk)
}

// WriteEnd ends the response body: the last chunk and trailers for a chunked body, a check
// that a Length body was complete otherwise. trailers may be nil.
func (c *ServerConn) WriteEnd(trailers *header.Map) error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.end(trailers)
}

// Flush sends everything written so far.
func (c *ServerConn) Flush() error {
	if c.gone != nil {
		return c.gone
	}
	return c.wr.flush()
}

// Hijack hands the connection over, typically after a 101 or a CONNECT's 200, with any bytes
// already read past the last head (a copy). Pending output is flushed first; a write error
// will show on the connection. The ServerConn is unusable afterwards.
func (c *ServerConn) Hijack() (net.Conn, []byte) {
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
// Strings from read heads and trailers are invalid afterwards.
func (c *ServerConn) Release() {
	if c.gone != nil {
		return
	}
	c.wr.release()
	c.rd.release()
	c.gone = ErrReleased
}

func reasonPhrase(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 426:
		return "Upgrade Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return ""
}
