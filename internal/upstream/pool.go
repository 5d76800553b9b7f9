// Package upstream holds connection pools to upstream hosts: one Pool per (host, protocol),
// with keep-alive reuse, connection limits, idle expiry and TLS origination.
//
// HTTP/1.1 pools hand out raw connections (Get/Put); HTTP/2 pools multiplex requests over a
// few net/http client connections (RoundTripH2). An Exchange runs one request and its
// response over either: H1 with the gateway's own HTTP/1.1 client codec, kept on each
// connection so that a request on a reused one allocates nothing, H2 over net/http. The
// router decides which host, and what to do when an attempt fails; the exchange only speaks
// the protocol.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Errors returned by Get and RoundTripH2. The router maps them to Envoy's response flags.
var (
	// ErrConnectFailed wraps a failed TCP connect or TLS handshake (503, flag UF).
	ErrConnectFailed = errors.New("upstream: connect failed")
	// ErrOverflow is returned when a connection limit is reached (503, flag UO).
	ErrOverflow = errors.New("upstream: connection limit reached")
	// ErrPoolClosed is returned by a pool whose host was removed.
	ErrPoolClosed = errors.New("upstream: pool closed")
	// ErrProtocol is returned when a method is called on a pool of the other protocol.
	ErrProtocol = errors.New("upstream: wrong protocol for pool")
)

// Protocol is the HTTP version a pool speaks.
type Protocol uint8

const (
	HTTP1 Protocol = iota
	HTTP2
)

func (p Protocol) String() string {
	if p == HTTP2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

// Defaults applied by NewPool to zero options.
const (
	DefaultConnectTimeout = 5 * time.Second // Envoy's connect_timeout default
	DefaultKeepAlive      = 15 * time.Second
)

// PoolOptions configure a Pool. The zero value is usable: plaintext HTTP/1.1, no limits, no
// idle expiry.
type PoolOptions struct {
	Protocol Protocol
	// ConnectTimeout bounds the TCP connect and the TLS handshake together.
	ConnectTimeout time.Duration
	// IdleTimeout closes connections idle for this long (0 keeps them until the peer closes).
	IdleTimeout time.Duration
	// MaxConnections caps this pool's open connections, including ones being dialed
	// (0 = unlimited).
	MaxConnections uint32
	// Limit is a connection budget shared with other pools: Envoy's max_connections circuit
	// breaker applies to a whole cluster, not to one host.
	Limit *ConnLimit
	// MaxRequestsPerConnection retires a connection after this many requests (0 = unlimited).
	MaxRequestsPerConnection uint32
	// TLS originates TLS when non-nil (see BuildTLS). The pool adjusts ALPN to its protocol.
	TLS *tls.Config
	// KeepAlive is the TCP keep-alive idle time (0 = DefaultKeepAlive, negative disables).
	KeepAlive time.Duration
	// HTTP2 tunes HTTP/2 pools: MaxConcurrentStreams caps streams per connection (more
	// connections are opened beyond it); the window sizes set the receive buffers.
	HTTP2 model.HTTP2Options
	// Stats counts connections for the cluster (nil: not counted).
	Stats *ConnStats
}

// PoolStats is a snapshot of a pool's counters, for the admin API.
type PoolStats struct {
	Active          int    // connections handed out (HTTP/1.1) or with streams in flight (HTTP/2)
	Idle            int    // connections ready for reuse
	Open            int64  // open connections, including ones being dialed
	Connects        uint64 // successful connects (TCP and, with TLS, the handshake)
	ConnectFailures uint64
	Overflows       uint64 // Get or RoundTripH2 calls refused by a connection limit
	Reuses          uint64 // requests served by an already open connection
}

// Pool is the set of connections to one upstream address for one protocol. All methods are
// safe for concurrent use.
type Pool struct {
	opts   PoolOptions
	addr   atomic.Pointer[string]
	dialer net.Dialer
	tls    *tls.Config // opts.TLS with ALPN adjusted to the protocol

	open            atomic.Int64
	connects        atomic.Uint64
	connectFailures atomic.Uint64
	overflows       atomic.Uint64
	reuses          atomic.Uint64

	mu     sync.Mutex
	closed bool
	idle   []*Conn // LIFO: the most recently used connection is reused first
	// suspectAt is when a connection reused without the liveness check came back unusable;
	// connections returned before then are checked again.
	suspectAt time.Time
	active    int
	timer     *time.Timer // one idle-expiry timer for the whole pool
	armed     bool

	h2 h2state
}

// NewPool returns a pool dialing addr ("ip:port" or "host:port").
func NewPool(addr string, opts PoolOptions) *Pool {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	p := &Pool{opts: opts}
	p.addr.Store(&addr)
	p.dialer = net.Dialer{
		Timeout: opts.ConnectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   opts.KeepAlive > 0,
			Idle:     opts.KeepAlive,
			Interval: opts.KeepAlive,
			Count:    3,
		},
	}
	if opts.KeepAlive < 0 {
		p.dialer.KeepAlive = -1
	}
	if opts.TLS != nil {
		p.tls = alpnFor(opts.TLS, opts.Protocol)
	}
	if opts.Protocol == HTTP2 {
		p.h2.sem = make(chan struct{}, 1)
	}
	return p
}

// alpnFor adapts the configured ALPN list to the pool's protocol: an HTTP/2 pool must offer
// h2, and an HTTP/1.1 pool must not, or a server could pick a protocol the codec can't speak.
func alpnFor(c *tls.Config, proto Protocol) *tls.Config {
	c = c.Clone()
	var protos []string
	for _, p := range c.NextProtos {
		if p != "h2" {
			protos = append(protos, p)
		}
	}
	if proto == HTTP2 {
		protos = append([]string{"h2"}, protos...)
	}
	c.NextProtos = protos
	return c
}

// Addr is the address new connections are dialed to.
func (p *Pool) Addr() string { return *p.addr.Load() }

// SetAddr changes the address of future connections; open ones stay. LOGICAL_DNS clusters
// use it to follow the latest resolution without dropping pooled connections.
func (p *Pool) SetAddr(addr string) {
	if p.Addr() != addr {
		p.addr.Store(&addr)
	}
}

// Protocol is the pool's protocol.
func (p *Pool) Protocol() Protocol { return p.opts.Protocol }

// TLS reports whether the pool originates TLS.
func (p *Pool) TLS() bool { return p.opts.TLS != nil }

// recentIdle is how long after its return an idle connection is handed to GetReplayable
// without the liveness check. Servers close idle keep-alive connections after seconds, not
// within a second of their last response.
const recentIdle = time.Second

// Get returns a connection for one HTTP/1.1 request: the most recently returned idle one
// that is still open, else a new one. The caller must hand it back with Put (or Close it).
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	return p.get(ctx, false)
}

// GetReplayable is Get for a request the caller sends again on a fresh connection when a
// reused one turns out closed before any response byte (a bodiless idempotent request).
// The liveness check, a system call per reuse, is then skipped for a connection returned
// within the last second: a peer that closed it since is caught by the replay.
func (p *Pool) GetReplayable(ctx context.Context) (*Conn, error) {
	return p.get(ctx, true)
}

func (p *Pool) get(ctx context.Context, replayable bool) (*Conn, error) {
	if p.opts.Protocol != HTTP1 {
		return nil, ErrProtocol
	}
	now := time.Now()
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrPoolClosed
		}
		n := len(p.idle)
		if n == 0 {
			break
		}
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		trusted := replayable && c.idleAt.After(p.suspectAt)
		p.mu.Unlock()
		// An expired connection may still be listed if the timer has not run yet, and a
		// peer may have closed its end while the connection sat idle: both would fail
		// the request after it is sent, when it can't safely be retried.
		idle := now.Sub(c.idleAt)
		if (p.opts.IdleTimeout <= 0 || idle < p.opts.IdleTimeout) && p.usable(c, now, trusted && idle < recentIdle) {
			p.mu.Lock()
			closed := p.closed
			if !closed {
				c.out = true
				p.active++
			}
			p.mu.Unlock()
			if closed {
				c.destroy()
				return nil, ErrPoolClosed
			}
			c.Requests++
			c.unchecked = trusted && idle < recentIdle
			p.reuses.Add(1)
			return c, nil
		}
		c.destroy()
		p.mu.Lock()
	}
	p.mu.Unlock()

	nc, raw, err := p.dial(ctx, nil)
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: nc, pool: p, Requests: 1}
	c.initPeek(raw)
	p.mu.Lock()
	closed := p.closed
	if !closed {
		c.out = true
		p.active++
	}
	p.mu.Unlock()
	if closed {
		c.destroy()
		return nil, ErrPoolClosed
	}
	return c, nil
}

// usable clears a request deadline that expired while c was idle and, unless trusted,
// checks that the peer has not closed c.
func (p *Pool) usable(c *Conn, now time.Time, trusted bool) bool {
	c.clearExpiredDeadline(now)
	return trusted || c.alive()
}

// Put hands back a connection obtained from Get. A reusable connection (the response was
// read whole and the exchange allows keep-alive) goes to the idle list unless the pool is
// closed or the connection has served MaxRequestsPerConnection requests; otherwise it is
// closed. Put is a no-op for a connection already handed back.
func (p *Pool) Put(c *Conn, reusable bool) {
	if c == nil {
		return
	}
	if max := p.opts.MaxRequestsPerConnection; max > 0 && c.Requests >= int(max) {
		reusable = false
	}
	p.mu.Lock()
	if !c.out {
		p.mu.Unlock()
		return
	}
	c.out = false
	p.active--
	if c.unchecked && !reusable {
		// It may have failed because the peer had closed it, and the others returned as
		// long ago may be closed too (an upstream restart): check them when reused.
		p.suspectAt = time.Now()
	}
	c.unchecked = false
	if !reusable || p.closed {
		p.mu.Unlock()
		c.destroy()
		return
	}
	c.idleAt = time.Now()
	p.idle = append(p.idle, c)
	if p.opts.IdleTimeout > 0 && !p.armed {
		p.armLocked(p.opts.IdleTimeout)
	}
	p.mu.Unlock()
}

func (p *Pool) armLocked(d time.Duration) {
	p.armed = true
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.expireIdle)
		return
	}
	p.timer.Reset(d)
}

// expireIdle closes connections idle longer than IdleTimeout. The idle list is ordered by
// the time connections were returned, oldest first, so expired ones form a prefix and the
// timer is re-armed for the oldest survivor.
func (p *Pool) expireIdle() {
	now := time.Now()
	p.mu.Lock()
	p.armed = false
	if p.closed {
		p.mu.Unlock()
		return
	}
	k := 0
	for k < len(p.idle) && now.Sub(p.idle[k].idleAt) >= p.opts.IdleTimeout {
		k++
	}
	expired := make([]*Conn, k)
	copy(expired, p.idle[:k])
	n := copy(p.idle, p.idle[k:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	if n > 0 {
		p.armLocked(p.opts.IdleTimeout - now.Sub(p.idle[0].idleAt))
	}
	p.mu.Unlock()
	for _, c := range expired {
		if st := p.opts.Stats; st != nil {
			st.IdleTimeout.Inc()
		}
		c.destroy()
	}
}

// dial opens a connection within the limits. It returns the connection to use (a *tls.Conn
// when TLS is configured) and the TCP connection beneath it. wrap, when set, wraps the TCP
// connection before TLS is layered on it.
func (p *Pool) dial(ctx context.Context, wrap func(*Pool, net.Conn) net.Conn) (net.Conn, *net.TCPConn, error) {
	if !p.reserve() {
		p.overflows.Add(1)
		return nil, nil, ErrOverflow
	}
	nc, raw, err := p.connect(ctx, wrap)
	if err != nil {
		p.release()
		p.connectFailures.Add(1)
		p.opts.Stats.connectFailed(err)
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrConnectFailed, p.Addr(), err)
	}
	p.connects.Add(1)
	p.opts.Stats.connected(p.opts.Protocol)
	return nc, raw, nil
}

func (p *Pool) connect(ctx context.Context, wrap func(*Pool, net.Conn) net.Conn) (net.Conn, *net.TCPConn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.ConnectTimeout)
	defer cancel()
	nc, err := p.dialer.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		return nil, nil, err
	}
	raw, _ := nc.(*net.TCPConn)
	if raw != nil {
		// Go enables TCP_NODELAY by default; set it anyway so the intent is explicit and a
		// changed default would not add Nagle delays to small proxied writes.
		_ = raw.SetNoDelay(true)
	}
	c := nc
	if wrap != nil {
		c = wrap(p, nc)
	}
	if p.tls == nil {
		return c, raw, nil
	}
	// Failures below close nc, not c: the caller gives the slot back itself.
	tc := tls.Client(c, p.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, nil, err
	}
	if p.opts.Protocol == HTTP2 && tc.ConnectionState().NegotiatedProtocol != "h2" {
		nc.Close()
		return nil, nil, errors.New("server did not negotiate h2 via ALPN")
	}
	return tc, raw, nil
}

// reserve takes one connection from the pool's and the shared budget.
func (p *Pool) reserve() bool {
	n := p.open.Add(1)
	if max := p.opts.MaxConnections; max > 0 && n > int64(max) {
		p.open.Add(-1)
		return false
	}
	if l := p.opts.Limit; l != nil && !l.acquire() {
		p.open.Add(-1)
		return false
	}
	return true
}

func (p *Pool) release() {
	p.open.Add(-1)
	if l := p.opts.Limit; l != nil {
		l.release()
	}
}

// Stats returns the pool's counters.
func (p *Pool) Stats() PoolStats {
	s := PoolStats{
		Open:            p.open.Load(),
		Connects:        p.connects.Load(),
		ConnectFailures: p.connectFailures.Load(),
		Overflows:       p.overflows.Load(),
		Reuses:          p.reuses.Load(),
	}
	p.mu.Lock()
	s.Active, s.Idle = p.active, len(p.idle)
	if p.opts.Protocol == HTTP2 {
		s.Active, s.Idle = p.h2StatsLocked()
	}
	p.mu.Unlock()
	return s
}

// Close drains the pool: idle connections are closed now, connections in use are closed
// when they are handed back, HTTP/2 connections when their last stream ends. Later Gets
// fail with ErrPoolClosed.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
	}
	h2 := p.h2.conns
	p.h2.conns = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.destroy()
	}
	p.h2.closing.Store(true)
	for _, cc := range h2 {
		closeIfIdle(cc)
	}
}

// ConnLimit is a connection budget shared by several pools (a cluster's max_connections
// circuit breaker).
type ConnLimit struct {
	max int64
	n   atomic.Int64
}

// NewConnLimit returns a budget of max connections (0 = unlimited).
func NewConnLimit(max uint32) *ConnLimit { return &ConnLimit{max: int64(max)} }

func (l *ConnLimit) acquire() bool {
	if n := l.n.Add(1); l.max > 0 && n > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *ConnLimit) release() { l.n.Add(-1) }

// Open is the number of connections currently counted against the budget.
func (l *ConnLimit) Open() int64 { return l.n.Load() }
