package upstream

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is one upstream connection of an HTTP/1.1 pool. It is the raw transport (TCP, or
// TLS over TCP): H1 runs the HTTP/1.1 client codec over it. Requests counts the requests
// sent on it, including the current one.
type Conn struct {
	net.Conn
	Requests int
	// Codec is the protocol state layered over the connection (H1's HTTP/1.1 client
	// codec), kept with it so reuse costs no allocation.
	Codec any

	pool   *Pool
	out    bool      // handed out by Get and not yet Put; guarded by pool.mu
	idleAt time.Time // when it was last Put; guarded by pool.mu while idle
	closed atomic.Bool
	// unchecked is set while out when it was handed out without the liveness check;
	// guarded by pool.mu.
	unchecked bool

	// The read and write deadline in force, as SetRequestDeadline left it; dlKnown is false
	// once a deadline was set another way.
	dl      time.Time
	dlSpan  time.Duration // how far ahead dl was when armed
	dlKnown bool

	// Idle liveness check state, see alive.
	raw    syscall.RawConn
	tls    *tls.Conn
	peekFn func(fd uintptr) bool
	peek   peekResult
	buf    [1]byte
}

type peekResult uint8

const (
	peekOpen   peekResult = iota // nothing to read: the peer has not closed
	peekClosed                   // EOF or a socket error
	peekData                     // bytes are waiting
)

// deadlineSlack bounds how late SetRequestDeadline lets a deadline fire: a deadline already
// in force is kept when it is at most this much (and at most an eighth of the timeout) later
// than the one asked for.
const deadlineSlack = 100 * time.Millisecond

// SetRequestDeadline sets the read and write deadline for the exchange about to start (zero:
// none). Re-arming the poller's timers costs two timer updates and a clock read per
// request, while a route timeout moves forward by only the time between requests: so a
// deadline in force that is no earlier than d and only slightly later is kept, and the
// timeout may fire that slightly late.
func (c *Conn) SetRequestDeadline(d time.Time) error {
	if c.dlKnown {
		if d.IsZero() {
			if c.dl.IsZero() {
				return nil
			}
		} else if !c.dl.IsZero() && !c.dl.Before(d) {
			if late := c.dl.Sub(d); late <= deadlineSlack && late <= c.dlSpan/8 {
				return nil
			}
		}
	}
	if d.IsZero() {
		c.dl, c.dlSpan, c.dlKnown = time.Time{}, 0, true
		return c.Conn.SetDeadline(d)
	}
	span := time.Until(d)
	slack := min(deadlineSlack, span/8)
	if slack < 0 {
		slack = 0
	}
	c.dl, c.dlSpan, c.dlKnown = d.Add(slack), span+slack, true
	return c.Conn.SetDeadline(c.dl)
}

// SetDeadline implements net.Conn; the deadline in force is no longer known to
// SetRequestDeadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.dlKnown = false
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline implements net.Conn (see SetDeadline).
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlKnown = false
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline implements net.Conn (see SetDeadline).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dlKnown = false
	return c.Conn.SetWriteDeadline(t)
}

// clearExpiredDeadline lifts a request deadline that passed while the connection sat idle,
// which would otherwise fail the liveness check and the next request's first read.
func (c *Conn) clearExpiredDeadline(now time.Time) {
	if c.dlKnown && (c.dl.IsZero() || now.Before(c.dl)) {
		return
	}
	c.dl, c.dlSpan, c.dlKnown = time.Time{}, 0, true
	_ = c.Conn.SetDeadline(time.Time{})
}

// Close returns the connection to its pool as not reusable, which closes it. It makes a
// plain Close by a caller that forgets Put safe for the pool's accounting.
func (c *Conn) Close() error {
	c.pool.Put(c, false)
	return nil
}

// destroy closes the connection and gives its slot back to the limits, once.
func (c *Conn) destroy() {
	if c.closed.Swap(true) {
		return
	}
	c.Conn.Close()
	c.pool.release()
	c.pool.opts.Stats.destroyed()
}

func (c *Conn) initPeek(raw *net.TCPConn) {
	c.tls, _ = c.Conn.(*tls.Conn)
	if raw == nil {
		return
	}
	rc, err := raw.SyscallConn()
	if err != nil {
		return
	}
	c.raw = rc
	c.peekFn = c.peekFD // bound once so the check does not allocate per Get
}

// alive reports whether an idle connection can carry another request. It peeks at the
// socket without blocking: an idle HTTP/1.1 connection has nothing to read unless the peer
// closed it (EOF) or is about to (an unsolicited response such as 408). This costs one
// system call per reuse but needs no goroutine per idle connection, which keeps idle
// connections cheap.
func (c *Conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	switch c.peek {
	case peekOpen:
		return true
	case peekData:
		// On TLS, readable bytes may be a post-handshake message (a TLS 1.3 session
		// ticket) rather than data: let crypto/tls consume it.
		return c.tls != nil && c.tlsAlive()
	}
	return false
}

// tlsAlive reads from the TLS connection with a short deadline. A timeout means only
// handshake messages were pending; application data, an alert or EOF mean the connection
// is unusable. crypto/tls treats a deadline timeout as temporary, so the connection stays
// usable after one.
func (c *Conn) tlsAlive() bool {
	c.dlKnown = false
	_ = c.tls.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := c.tls.Read(c.buf[:])
	_ = c.tls.SetReadDeadline(time.Time{})
	if n > 0 || err == nil {
		return false
	}
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Detach takes c out of its pool for good, for a tunnel (an accepted Upgrade) that owns the
// connection from now on. The connection still counts against the pool's limits until the
// returned conn is closed, so a circuit breaker sees tunnels too.
func (c *Conn) Detach() net.Conn {
	p := c.pool
	p.mu.Lock()
	if c.out {
		c.out = false
		p.active--
	}
	p.mu.Unlock()
	return detached{Conn: c.Conn, c: c}
}

type detached struct {
	net.Conn
	c *Conn
}

func (d detached) Close() error {
	d.c.destroy()
	return nil
}

// CloseWrite half-closes a TCP (or TLS) connection so a tunnel can pass on an EOF.
func (d detached) CloseWrite() error {
	if cw, ok := d.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return d.Conn.Close()
}
