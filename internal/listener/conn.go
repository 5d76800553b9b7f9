package listener

import (
	"errors"
	"net"
)

// maxRecord bounds the bytes kept while a ClientHello is inspected for a chain that might not
// terminate TLS; a larger hello (Envoy's tls_inspector caps at 64 KiB as well) closes the
// connection instead of growing a buffer without bound.
const maxRecord = 64 << 10

var errMuted = errors.New("listener: write during filter chain selection")

// conn wraps an accepted connection while the listener inspects it and keeps it in the
// listener's connection list. It replays the bytes read for inspection to whoever reads next,
// so peeking costs the fixed head array and nothing per Read. It is the one allocation the
// listener makes per connection beyond what crypto/tls needs.
type conn struct {
	net.Conn
	l          *listener
	prev, next *conn // listener's connection list, guarded by l.mu
	serving    bool  // ServeConn has been called; guarded by l.mu
	port       uint16
	muteWrites bool // until a chain is chosen, nothing may reach the client
	recording  bool
	replay     []byte // bytes still to be returned by Read
	rec        []byte // the bytes read while recording
	head       [16]byte
	selected   bool // the TLS inspector ran; chain is its choice
	chain      *chain
	sni        string
}

func (c *conn) localPort() uint32 { return uint32(c.port) }

// peek reads the first bytes of the stream into head and arranges for them to be read again.
func (c *conn) peek() (byte, error) {
	n, err := c.Conn.Read(c.head[:])
	if n == 0 {
		if err == nil {
			err = errors.New("listener: empty read")
		}
		return 0, err
	}
	c.replay = c.head[:n]
	return c.head[0], nil
}

func (c *conn) Read(p []byte) (int, error) {
	var n int
	var err error
	if len(c.replay) > 0 {
		n = copy(p, c.replay)
		c.replay = c.replay[n:]
	} else {
		n, err = c.Conn.Read(p)
	}
	if c.recording && n > 0 {
		if len(c.rec)+n > maxRecord {
			c.recording = false
			c.rec = nil
			return n, errors.New("listener: ClientHello too large")
		}
		c.rec = append(c.rec, p[:n]...)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.muteWrites {
		return 0, errMuted
	}
	return c.Conn.Write(p)
}

// rewind makes everything recorded since inspection began readable again, for a chain that
// takes the TLS stream as is.
func (c *conn) rewind() bool {
	if !c.recording {
		return false
	}
	c.recording = false
	c.replay, c.rec = c.rec, nil
	return true
}

// CloseWrite half-closes the TCP connection, which HTTP/1 servers use to linger before close.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("listener: CloseWrite not supported")
}

// NetConn returns the accepted connection, for handlers that need socket options. Reading from
// it directly skips bytes still held for replay.
func (c *conn) NetConn() net.Conn { return c.Conn }
