package http2

import (
	"encoding/binary"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The write path. Frames are appended to c.out under c.mu; flushLocked writes everything
// queued in one Write and repeats while more was queued meanwhile. Only one goroutine writes
// at a time (c.flushing): a stream's goroutine ending its response writes itself, together
// with whatever other streams queued; frames the reading goroutine queues (acknowledgements,
// WINDOW_UPDATE, RST_STREAM) are written by a short-lived goroutine started when nobody is
// writing, so that a peer that does not read never blocks the reading goroutine.

type headerKind uint8

const (
	kindRequest headerKind = iota
	kindResponse
	kindTrailers
)

func appendFrameHeader(b []byte, length int, t http2.FrameType, flags http2.Flags, id uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(t), byte(flags),
		byte(id>>24)&0x7f, byte(id>>16), byte(id>>8), byte(id))
}

// encWriter is the HPACK encoder's output: the header block being built.
type encWriter struct{ b []byte }

func (w *encWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// connectionSpecific are fields RFC 9113 §8.2.2 forbids in HTTP/2; they are dropped from
// what we send and make what we receive malformed.
func connectionSpecific(name string) bool {
	switch name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

func (c *Conn) queueHeadersLocked(id uint32, h *Header, kind headerKind, end bool) error {
	c.encBuf.b = c.encBuf.b[:0]
	switch kind {
	case kindRequest:
		c.enc.WriteField(hpack.HeaderField{Name: ":method", Value: h.Method})
		if h.Method != "CONNECT" || h.Protocol != "" {
			c.enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: h.Scheme})
		}
		if h.Authority != "" {
			c.enc.WriteField(hpack.HeaderField{Name: ":authority", Value: h.Authority})
		}
		if h.Method != "CONNECT" || h.Protocol != "" {
			c.enc.WriteField(hpack.HeaderField{Name: ":path", Value: h.Path})
		}
		if h.Protocol != "" {
			c.enc.WriteField(hpack.HeaderField{Name: ":protocol", Value: h.Protocol})
		}
	case kindResponse:
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusString(h.Status)})
	}
	for _, f := range h.Fields {
		if connectionSpecific(f.Name) || (f.Name == "te" && f.Value != "trailers") {
			continue
		}
		c.enc.WriteField(f)
	}
	block := c.encBuf.b
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), int(c.peerMaxFrameSize))
		var flags http2.Flags
		if n == len(block) {
			flags |= http2.FlagHeadersEndHeaders
		}
		t := http2.FrameContinuation
		if first {
			t = http2.FrameHeaders
			if end {
				flags |= http2.FlagHeadersEndStream
			}
		}
		c.out = appendFrameHeader(c.out, n, t, flags, id)
		c.out = append(c.out, block[:n]...)
		block = block[n:]
		c.queuedFrames++
	}
	return c.checkOutboundLocked()
}

func (c *Conn) queueDataLocked(id uint32, p []byte, end bool) {
	var flags http2.Flags
	if end {
		flags = http2.FlagDataEndStream
	}
	c.out = appendFrameHeader(c.out, len(p), http2.FrameData, flags, id)
	c.out = append(c.out, p...)
	c.queuedFrames++
	c.checkOutboundLocked()
}

// queueControlLocked queues a frame that counts against MaxOutboundControlFrames.
func (c *Conn) queueControlLocked(t http2.FrameType, flags http2.Flags, id uint32, payload []byte) error {
	c.out = appendFrameHeader(c.out, len(payload), t, flags, id)
	c.out = append(c.out, payload...)
	c.queuedFrames++
	c.queuedControl++
	return c.checkOutboundLocked()
}

func (c *Conn) queueRSTLocked(id uint32, code ErrCode) error {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], uint32(code))
	return c.queueControlLocked(http2.FrameRSTStream, 0, id, p[:])
}

func (c *Conn) queueWindowUpdateLocked(id, incr uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], incr&0x7fffffff)
	// WINDOW_UPDATE answers the peer's DATA; Envoy does not count it as a control frame.
	c.out = appendFrameHeader(c.out, 4, http2.FrameWindowUpdate, 0, id)
	c.out = append(c.out, p[:]...)
	c.queuedFrames++
	c.checkOutboundLocked()
}

func (c *Conn) queueGoAwayLocked(last uint32, code ErrCode, debug string) {
	p := make([]byte, 8, 8+len(debug))
	binary.BigEndian.PutUint32(p, last&0x7fffffff)
	binary.BigEndian.PutUint32(p[4:], uint32(code))
	p = append(p, debug...)
	c.out = appendFrameHeader(c.out, len(p), http2.FrameGoAway, 0, 0)
	c.out = append(c.out, p...)
	c.queuedFrames++
}

// checkOutboundLocked closes the connection when the peer lets frames pile up: it sends
// what needs an answer (PING, SETTINGS, frames we reset) without reading the answers.
func (c *Conn) checkOutboundLocked() error {
	if c.closed {
		return ErrConnClosed
	}
	frames := c.queuedFrames + c.inflightFrames
	control := c.queuedControl + c.inflightControl
	if frames <= c.cfg.MaxOutboundFrames && control <= c.cfg.MaxOutboundControlFrames {
		return nil
	}
	if control > c.cfg.MaxOutboundControlFrames {
		c.stats.OutboundControlFlood++
	} else {
		c.stats.OutboundFlood++
	}
	c.failLocked(errOutboundFlood)
	return errOutboundFlood
}

// flushLocked writes the queued frames unless another goroutine is writing, in which case
// that goroutine writes them in its next turn. It releases c.mu while writing.
func (c *Conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	for len(c.out) > 0 && !c.closed {
		buf := c.out
		c.out = c.spare[:0]
		c.inflightFrames, c.inflightControl = c.queuedFrames, c.queuedControl
		c.queuedFrames, c.queuedControl = 0, 0
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		c.stats.Writes++
		if cap(buf) <= maxKeptBuffer {
			c.spare = buf[:0]
		} else {
			c.spare = nil // a burst's buffer is not kept for the connection's life
		}
		c.inflightFrames, c.inflightControl = 0, 0
		c.cond.Broadcast() // writers waiting for buffer space
		if err != nil {
			c.failLocked(err)
		}
	}
	c.flushing = false
	c.cond.Broadcast()
	if c.closeWhenIdle && len(c.streams) == 0 && !c.closed {
		c.failLocked(errGracefulClose)
	}
}

// kickLocked makes sure frames queued by the reading goroutine get written without it
// blocking in Write.
func (c *Conn) kickLocked() {
	if c.flushing || len(c.out) == 0 || c.closed {
		return
	}
	c.flushing = true // reserved for the goroutine started here
	go func() {
		c.mu.Lock()
		c.flushing = false
		c.flushLocked()
		c.mu.Unlock()
	}()
}

var statusStrings = func() (s [600]string) {
	for i := 100; i < 600; i++ {
		s[i] = string([]byte{byte('0' + i/100), byte('0' + i/10%10), byte('0' + i%10)})
	}
	return s
}()

func statusString(code int) string {
	if code >= 100 && code < 600 {
		return statusStrings[code]
	}
	return "500"
}
