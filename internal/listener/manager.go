package listener

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Manager runs the listeners of the current config.
type Manager struct {
	log              *slog.Logger
	drainTime        time.Duration
	handshakeTimeout time.Duration
	filtersTimeout   time.Duration
	stats            *stats.Store

	mu       sync.Mutex
	active   map[string]*listener
	retiring map[*listener]struct{}
	stopped  bool // after Drain or Close: Apply is refused

	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // one per retiring listener
}

// ErrStopped is returned by Apply after Drain or Close.
var ErrStopped = errors.New("listener: manager stopped")

// NewManager returns a Manager with no listeners.
func NewManager(opts Options) *Manager {
	m := &Manager{
		log:              opts.Logger,
		drainTime:        cmp.Or(opts.DrainTime, defaultDrainTime),
		handshakeTimeout: cmp.Or(opts.HandshakeTimeout, defaultHandshakeTimeout),
		filtersTimeout:   cmp.Or(opts.ListenerFiltersTimeout, defaultFiltersTimeout),
		stats:            opts.Stats,
		active:           make(map[string]*listener),
		retiring:         make(map[*listener]struct{}),
		closed:           make(chan struct{}),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.stats == nil {
		m.stats = stats.Default
	}
	return m
}

// Apply makes ls the set of running listeners, by name. A listener whose name and address are
// unchanged keeps its socket and gets the new Compiled for connections accepted from now on;
// existing connections keep theirs. New listeners are bound; one that fails to bind is
// reported in the returned error (naming the listener and address) and, if it replaced a
// listener of the same name on another address, that one keeps running untouched. Listeners
// not in ls stop accepting and drain in the background.
func (m *Manager) Apply(ls []*Compiled) error {
	seen := make(map[string]bool, len(ls))
	for _, cc := range ls {
		if cc == nil || cc.Model == nil {
			return errors.New("listener: Apply: nil Compiled")
		}
		if seen[cc.Model.Name] {
			return fmt.Errorf("listener %q: Apply: duplicate name", cc.Model.Name)
		}
		seen[cc.Model.Name] = true
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	// Removed listeners release their sockets first, so a listener renamed on the same address
	// can bind it.
	for name, l := range m.active {
		if !seen[name] {
			delete(m.active, name)
			m.retireLocked(l)
		}
	}
	var errs []error
	for _, cc := range ls {
		name := cc.Model.Name
		old := m.active[name]
		if old != nil && old.addr == cc.addr {
			old.cur.Store(cc)
			continue
		}
		l, err := m.start(cc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.active[name] = l
		if old != nil {
			m.retireLocked(old)
		}
	}
	return errors.Join(errs...)
}

// Drain stops accepting on every listener and drains all connections: handlers see
// ConnInfo.Draining closed, connections not yet handed to a handler are closed, and whatever is
// still open when DrainTime passes or ctx is done is closed. Drain returns once every
// ServeConn has returned. Apply is refused afterwards.
func (m *Manager) Drain(ctx context.Context) {
	m.mu.Lock()
	m.stopped = true
	for name, l := range m.active {
		delete(m.active, name)
		m.retireLocked(l)
	}
	m.mu.Unlock()

	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	case <-m.closed:
	}
	m.mu.Lock()
	for l := range m.retiring {
		l.forceClose()
	}
	m.mu.Unlock()
	<-done
}

// Close stops every listener and closes every connection at once, then waits for the handlers
// to return.
func (m *Manager) Close() {
	m.closeOnce.Do(func() { close(m.closed) })
	m.mu.Lock()
	m.stopped = true
	for name, l := range m.active {
		delete(m.active, name)
		m.retireLocked(l)
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Listeners reports the running listeners sorted by name, then those still draining.
func (m *Manager) Listeners() []Status {
	m.mu.Lock()
	out := make([]Status, 0, len(m.active)+len(m.retiring))
	for _, l := range m.active {
		out = append(out, l.status(false))
	}
	for l := range m.retiring {
		out = append(out, l.status(true))
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		if a.Draining != b.Draining {
			if a.Draining {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// retireLocked stops l accepting and drains it in the background until it is empty, DrainTime
// passes or the Manager is closed.
func (m *Manager) retireLocked(l *listener) {
	l.stop()
	m.retiring[l] = struct{}{}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTimer(m.drainTime)
		select {
		case <-l.empty:
		case <-t.C:
			m.log.Info("listener drain time elapsed, closing connections", "listener", l.name, "connections", l.count())
		case <-m.closed:
		}
		t.Stop()
		l.forceClose()
		l.wg.Wait()
		l.st.scope.Release()
		m.mu.Lock()
		delete(m.retiring, l)
		m.mu.Unlock()
		m.log.Info("listener stopped", "listener", l.name, "address", l.bound)
	}()
}

func (m *Manager) start(cc *Compiled) (*listener, error) {
	lc := net.ListenConfig{Control: controlReuseAddr}
	ln, err := lc.Listen(context.Background(), cc.network, cc.addr.String())
	if err != nil {
		return nil, fmt.Errorf("listener %q: bind %s: %w", cc.Model.Name, cc.addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{
		m:        m,
		name:     cc.Model.Name,
		addr:     cc.addr,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		draining: make(chan struct{}),
		empty:    make(chan struct{}),
	}
	l.drainCtx, l.drainCancel = context.WithCancel(context.Background())
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		l.bound = ta.AddrPort()
	}
	statAddr := cc.addr
	if statAddr.Port() == 0 {
		statAddr = netip.AddrPortFrom(statAddr.Addr(), l.bound.Port())
	}
	l.st = newListenerStats(m.stats, statAddr)
	l.cur.Store(cc)
	l.wg.Add(1)
	go l.acceptLoop()
	m.log.Info("listener started", "listener", l.name, "address", l.bound)
	return l, nil
}

// listener is one bound socket and its connections.
type listener struct {
	m      *Manager
	name   string
	addr   netip.AddrPort // as configured (normalised), to tell an address change from a swap
	ln     net.Listener
	bound  netip.AddrPort
	cur    atomic.Pointer[Compiled]
	ctx    context.Context // cancelled when connections are force-closed
	cancel context.CancelFunc

	draining chan struct{} // closed when accepting stops
	// drainCtx is cancelled together with draining, for handlers that react with
	// context.AfterFunc instead of a goroutine per connection.
	drainCtx    context.Context
	drainCancel context.CancelFunc
	stopOnce    sync.Once

	mu         sync.Mutex
	conns      *conn // intrusive list: no per-connection map entry
	n          int
	isDraining bool
	empty      chan struct{} // closed once draining and no connection is left

	rejected atomic.Uint64
	noMatch  atomic.Uint64
	st       *listenerStats
	wg       sync.WaitGroup // the accept loop and one per connection
}

func (l *listener) status(draining bool) Status {
	return Status{
		Name:              l.name,
		Address:           l.bound,
		ActiveConnections: l.count(),
		Rejected:          l.rejected.Load(),
		NoChainMatch:      l.noMatch.Load(),
		Draining:          draining,
	}
}

func (l *listener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// stop closes the socket, tells handlers to drain and closes connections that have not reached
// a handler yet: they have nothing in flight.
func (l *listener) stop() {
	l.stopOnce.Do(func() {
		l.ln.Close()
		close(l.draining)
		if l.drainCancel != nil {
			l.drainCancel()
		}
		l.mu.Lock()
		l.isDraining = true
		for c := l.conns; c != nil; c = c.next {
			if !c.serving {
				c.Conn.Close()
			}
		}
		if l.n == 0 {
			close(l.empty)
		}
		l.mu.Unlock()
	})
}

func (l *listener) forceClose() {
	l.cancel()
	l.mu.Lock()
	for c := l.conns; c != nil; c = c.next {
		c.Conn.Close()
	}
	l.mu.Unlock()
}

// add tracks c unless the listener is draining or at its connection limit.
func (l *listener) add(c *conn, limit uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isDraining {
		return false
	}
	if limit > 0 && uint64(l.n) >= limit {
		l.rejected.Add(1)
		l.st.cxOverflow.Inc()
		return false
	}
	c.next = l.conns
	if l.conns != nil {
		l.conns.prev = c
	}
	l.conns = c
	l.n++
	return true
}

func (l *listener) remove(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.conns = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	l.n--
	if l.isDraining && l.n == 0 {
		close(l.empty)
	}
}

// enterServe marks c as handed to its handler; a connection that reaches this point after the
// drain started is idle and is closed instead.
func (l *listener) enterServe(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isDraining {
		return false
	}
	c.serving = true
	return true
}

const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// acceptLoop accepts until the socket is closed. Errors other than a closed socket (EMFILE,
// ECONNABORTED, ...) are retried with net/http's backoff so that running out of descriptors
// does not spin a core.
func (l *listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, minAcceptBackoff), maxAcceptBackoff)
			l.m.log.Warn("listener accept error, retrying", "listener", l.name, "error", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.draining:
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		cc := l.cur.Load()
		c := &conn{Conn: nc, l: l}
		if !l.add(c, cc.Model.ConnectionLimit) {
			// Envoy's connection_limit filter also accepts and closes at once.
			nc.Close()
			continue
		}
		l.st.opened()
		l.wg.Add(1)
		go l.serve(c, cc)
	}
}

// serve selects c's chain, terminates TLS if the chain does, and runs the chain's handler.
func (l *listener) serve(c *conn, cc *Compiled) {
	defer l.wg.Done()
	defer l.remove(c)
	defer l.st.closed(time.Now())
	nc, info, ch := l.setup(c, cc)
	if ch == nil {
		c.Conn.Close()
		return
	}
	if !l.enterServe(c) {
		c.Conn.Close()
		return
	}
	ch.handler.ServeConn(l.ctx, nc, info)
	nc.Close()
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// setup runs the listener filters: transport detection, the TLS inspector and handshake. It
// returns the connection the handler should use, or a nil chain when the connection must be
// closed.
func (l *listener) setup(c *conn, cc *Compiled) (net.Conn, ConnInfo, *chain) {
	info := ConnInfo{
		Listener:          l.name,
		LocalAddr:         addrPort(c.Conn.LocalAddr()),
		RemoteAddr:        addrPort(c.Conn.RemoteAddr()),
		TransportProtocol: TransportRaw,
		Draining:          l.draining,
		DrainContext:      l.drainCtx,
	}
	c.port = info.LocalAddr.Port()

	if !cc.inspect {
		// Nothing depends on the client's first bytes, so server-first protocols work and
		// no byte is peeked.
		ch := cc.selectChain(c.localPort(), "", TransportRaw, nil)
		if ch == nil {
			l.noMatch.Add(1)
			l.st.noMatch.Inc()
			return nil, info, nil
		}
		info.ChainName = ch.model.Name
		return c.Conn, info, ch
	}

	_ = c.Conn.SetReadDeadline(time.Now().Add(l.m.filtersTimeout))
	first, err := c.peek()
	if err != nil {
		l.debug("listener: no data before timeout or close", c, err)
		return nil, info, nil
	}
	// 0x16 is the TLS handshake record type; tls_inspector tells TLS apart the same way.
	if first != 0x16 {
		ch := cc.selectChain(c.localPort(), "", TransportRaw, nil)
		if ch == nil || ch.tls != nil {
			// A TLS-terminating chain cannot serve a plaintext client.
			l.noMatch.Add(1)
			l.st.noMatch.Inc()
			return nil, info, nil
		}
		_ = c.Conn.SetReadDeadline(time.Time{})
		info.ChainName = ch.model.Name
		return c, info, ch
	}

	info.TransportProtocol = TransportTLS
	_ = c.Conn.SetDeadline(time.Now().Add(l.m.handshakeTimeout))
	c.muteWrites = true
	c.recording = cc.recordCH
	tc := tls.Server(c, cc.sniff)
	if err := tc.Handshake(); err != nil {
		ch := c.chain
		if ch != nil && ch.tls == nil && c.rewind() {
			// The chain takes the TLS stream as is (TLS passthrough): give it the
			// ClientHello again.
			c.muteWrites = false
			_ = c.Conn.SetDeadline(time.Time{})
			info.ChainName = ch.model.Name
			info.SNI = c.sni
			return c, info, ch
		}
		if c.selected && ch == nil {
			l.noMatch.Add(1)
			l.st.noMatch.Inc()
		} else {
			l.st.sslError.Inc()
		}
		l.debug("listener: TLS handshake failed", c, err)
		return nil, info, nil
	}
	c.recording, c.rec = false, nil
	_ = c.Conn.SetDeadline(time.Time{})
	l.st.sslHandshake.Inc()
	st := tc.ConnectionState()
	info.TLS = &st
	info.ALPN = st.NegotiatedProtocol
	info.SNI = st.ServerName
	info.ChainName = c.chain.model.Name
	return tc, info, c.chain
}

func (l *listener) debug(msg string, c *conn, err error) {
	if l.m.log.Enabled(context.Background(), slog.LevelDebug) {
		l.m.log.Debug(msg, "listener", l.name, "remote", c.Conn.RemoteAddr(), "error", err)
	}
}
