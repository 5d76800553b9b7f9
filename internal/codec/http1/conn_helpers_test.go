package http1

import (
	"bytes"
	"io"
	"net"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// memConn is a net.Conn over fixed input that records output. With step > 0 each Read returns
// at most step bytes, which exercises every resumption point of the incremental parsers.
type memConn struct {
	in   []byte
	step int
	out  bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if c.step > 0 && n > c.step {
		n = c.step
	}
	n = copy(p[:n], c.in)
	c.in = c.in[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// discardConn swallows writes without allocating, for measuring the write path.
type discardConn struct{ memConn }

func (c *discardConn) Write(p []byte) (int, error) { return len(p), nil }

// loopConn replays the same input forever, for allocation-measuring reads.
type loopConn struct {
	discardConn
	msg []byte
	off int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.msg[c.off:])
	if c.off += n; c.off == len(c.msg) {
		c.off = 0
	}
	return n, nil
}

// fieldsString renders a Map's regular fields one per line, for compact comparisons.
func fieldsString(h *header.Map) string {
	var b strings.Builder
	for _, f := range h.Fields() {
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteString("\n")
	}
	return b.String()
}

// messageWriter is the body half that ServerConn and ClientConn share.
type messageWriter interface {
	WriteBody([]byte) error
	WriteEnd(*header.Map) error
	Flush() error
}

// writeLast writes body as the whole (or last) piece of a message's body, ends the message
// without trailers and flushes it.
func writeLast(w messageWriter, body []byte) error {
	if err := w.WriteBody(body); err != nil {
		return err
	}
	if err := w.WriteEnd(nil); err != nil {
		return err
	}
	return w.Flush()
}
