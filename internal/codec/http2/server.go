package http2

import (
	"net"
	"time"
)

// NewServerConn prepares the server side of an HTTP/2 connection on nc (TLS with ALPN "h2",
// or h2c with prior knowledge); h receives every stream's events. Serve runs it.
func NewServerConn(nc net.Conn, cfg Config, h Handler) *Conn {
	c := newConn(nc, cfg, true)
	c.handler = h
	return c
}

// Serve sends our SETTINGS, reads the client's preface and serves the connection until it
// ends. It returns after every stream left has been reset (OnReset).
func (c *Conn) Serve() {
	c.mu.Lock()
	c.queueSettingsLocked()
	c.flushLocked()
	c.mu.Unlock()
	c.serve()
}

// armIdle starts the timer behind IdleTimeout and StreamIdleTimeout. It ticks at a quarter
// of the shorter one: one timer per connection, however many streams.
func (c *Conn) armIdle() {
	period := c.cfg.IdleTimeout
	if t := c.cfg.StreamIdleTimeout; t > 0 && (period == 0 || t < period) {
		period = t
	}
	if period <= 0 {
		return
	}
	period = max(period/4, time.Millisecond)
	c.mu.Lock()
	c.idleTimer = time.AfterFunc(period, func() { c.sweepIdle(period) })
	c.mu.Unlock()
}

func (c *Conn) sweepIdle(period time.Duration) {
	now := nowNano()
	var idle []*Stream
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if t := c.cfg.IdleTimeout; t > 0 && len(c.streams) == 0 && now-c.lastActive > int64(t) {
		if c.server {
			c.finalGoAwayLocked()
		} else {
			c.failLocked(errGracefulClose)
		}
	}
	if t := c.cfg.StreamIdleTimeout; t > 0 {
		for _, s := range c.streams {
			if !s.idleFired && now-s.lastActive > int64(t) && (s.delivered || !c.server) {
				s.idleFired = true
				idle = append(idle, s)
			}
		}
	}
	c.idleTimer.Reset(period)
	c.mu.Unlock()
	for _, s := range idle {
		if ih, ok := s.handler.(IdleHandler); ok {
			if c.enter(s) {
				ih.OnStreamIdle(s)
				c.leave()
			}
			continue
		}
		c.mu.Lock()
		notify := c.resetLocked(s, ErrCodeCancel) || !c.server
		c.flushLocked()
		c.mu.Unlock()
		if notify {
			c.notifyReset(s, ErrCodeCancel)
		}
	}
}
