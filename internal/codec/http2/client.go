package http2

import (
	"errors"
	"net"
)

// ErrStreamLimit is returned by NewStream when the peer's SETTINGS_MAX_CONCURRENT_STREAMS
// is reached; a pool opens another connection or waits.
var ErrStreamLimit = errors.New("http2: peer's concurrent stream limit reached")

// ErrGoAway is returned by NewStream on a connection that is going away.
var ErrGoAway = errors.New("http2: connection going away")

// NewClientConn starts the client side of HTTP/2 on nc (TLS with ALPN "h2", or h2c with
// prior knowledge): it writes the preface and our SETTINGS and starts the connection's
// reading goroutine.
func NewClientConn(nc net.Conn, cfg Config) (*Conn, error) {
	c := newConn(nc, cfg, false)
	c.mu.Lock()
	c.out = append(c.out, ClientPreface...)
	c.queueSettingsLocked()
	c.flushLocked()
	err := c.closeErr
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	go c.serve()
	return c, nil
}

// CanTakeNewStream reports whether NewStream would not fail for the stream limit or the
// connection's end.
func (c *Conn) CanTakeNewStream() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && !c.peerGoAway && !c.goAwaySent && uint32(len(c.streams)) < c.peerMaxStreams &&
		c.nextID < maxWindow
}

// ActiveStreams returns the number of open streams.
func (c *Conn) ActiveStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

// NewStream opens a client stream by sending its request headers (h's :method, :scheme,
// :authority, :path, :protocol and fields); handler receives the response. Without end, the
// headers are written with the first WriteData (or by Flush).
func (c *Conn) NewStream(h *Header, end bool, handler Handler) (*Stream, error) {
	if c.server {
		return nil, errors.New("http2: NewStream on a server connection")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrConnClosed
	case c.peerGoAway || c.goAwaySent || c.nextID >= maxWindow:
		return nil, ErrGoAway
	case uint32(len(c.streams)) >= c.peerMaxStreams:
		return nil, ErrStreamLimit
	}
	s := &Stream{
		c: c, id: c.nextID, handler: handler, delivered: true,
		sendWindow: c.peerInitial, recvWindow: int64(c.cfg.InitialStreamWindowSize),
		lastActive: nowNano(), contentLength: -1, headRequest: h.Method == "HEAD",
	}
	c.nextID += 2
	c.streams[s.id] = s
	c.stats.StreamsOpened++
	if err := c.queueHeadersLocked(s.id, h, kindRequest, end); err != nil {
		return nil, err
	}
	s.wroteHeaders = true
	if end {
		s.localEnded = true
		c.flushLocked()
	}
	return s, nil
}
