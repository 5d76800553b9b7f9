package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
)

// h2state is an HTTP/2 pool's connections. Each http.ClientConn is one upstream connection
// multiplexing streams; a new one is dialed only when none can take another stream (the
// peer's SETTINGS_MAX_CONCURRENT_STREAMS or our own HTTP2.MaxConcurrentStreams).
//
// The connections come from net/http's Transport.NewClientConn (the successor of the
// deprecated golang.org/x/net/http2 Transport.NewClientConn): the transport never pools
// them itself and dials through our own dial, so limits and counters stay in one place.
type h2state struct {
	once    sync.Once
	t       *http.Transport
	conns   []*http.ClientConn // guarded by Pool.mu
	sem     chan struct{}      // serializes dials so a burst of requests opens one connection
	closing atomic.Bool        // set by Close; read by state hooks, which must not take Pool.mu
}

func (p *Pool) h2Transport() *http.Transport {
	p.h2.once.Do(func() {
		var protos http.Protocols
		t := &http.Transport{
			// A proxy forwards bodies as they are: never ask for gzip and decompress.
			DisableCompression: true,
			IdleConnTimeout:    p.opts.IdleTimeout,
			Protocols:          &protos,
			HTTP2: &http.HTTP2Config{
				MaxReceiveBufferPerConnection: int(p.opts.HTTP2.InitialConnectionWindowSize),
				MaxReceiveBufferPerStream:     int(p.opts.HTTP2.InitialStreamWindowSize),
			},
		}
		// The handshake is done inside dial so its failures count as connect failures.
		// net/http reads the negotiated ALPN from a *tls.Conn, so the wrapper that gives
		// the connection's slot back when net/http closes it sits beneath TLS.
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			nc, _, err := p.dial(ctx, wrapH2)
			return nc, err
		}
		if p.tls != nil {
			protos.SetHTTP2(true)
			t.DialTLSContext = dial
		} else {
			protos.SetUnencryptedHTTP2(true)
			t.DialContext = dial
		}
		p.h2.t = t
	})
	return p.h2.t
}

// RoundTripH2 sends req on one of the pool's HTTP/2 connections, opening one if none can
// take another stream. The caller must close the response body. req.URL must carry the
// scheme and authority to send (:scheme and :authority); the connection's address is the
// pool's regardless of req.URL.Host.
func (p *Pool) RoundTripH2(req *http.Request) (*http.Response, error) {
	if p.opts.Protocol != HTTP2 {
		return nil, ErrProtocol
	}
	cc, err := p.h2Get(req.Context())
	if err != nil {
		return nil, err
	}
	return cc.RoundTrip(req)
}

// h2Get returns a connection with a stream reserved on it.
func (p *Pool) h2Get(ctx context.Context) (*http.ClientConn, error) {
	if cc, err := p.h2Reserve(); cc != nil || err != nil {
		if cc != nil {
			p.reuses.Add(1)
		}
		return cc, err
	}
	select {
	case p.h2.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrConnectFailed, ctx.Err())
	}
	defer func() { <-p.h2.sem }()
	// Another request may have dialed while this one waited.
	if cc, err := p.h2Reserve(); cc != nil || err != nil {
		if cc != nil {
			p.reuses.Add(1)
		}
		return cc, err
	}
	cc, err := p.h2Dial(ctx) // returns with a stream reserved
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cc.Close()
		return nil, ErrPoolClosed
	}
	p.h2.conns = append(p.h2.conns, cc)
	p.mu.Unlock()
	return cc, nil
}

// h2Reserve reserves a stream on an open connection, newest first, dropping dead ones.
func (p *Pool) h2Reserve() (*http.ClientConn, error) {
	max := int(p.opts.HTTP2.MaxConcurrentStreams)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	for i := len(p.h2.conns) - 1; i >= 0; i-- {
		cc := p.h2.conns[i]
		if cc.Err() != nil {
			p.h2.conns = slices.Delete(p.h2.conns, i, i+1)
			continue
		}
		if max > 0 && cc.InFlight() >= max {
			continue
		}
		if cc.Reserve() == nil {
			return cc, nil
		}
	}
	return nil, nil
}

func (p *Pool) h2Dial(ctx context.Context) (*http.ClientConn, error) {
	scheme := "http"
	if p.tls != nil {
		scheme = "https"
	}
	cc, err := p.h2Transport().NewClientConn(ctx, scheme, p.Addr())
	if err != nil {
		if errors.Is(err, ErrOverflow) || errors.Is(err, ErrConnectFailed) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrConnectFailed, p.Addr(), err)
	}
	if cc.Reserve() != nil {
		cc.Close()
		return nil, fmt.Errorf("%w: %s: new connection refused a stream", ErrConnectFailed, p.Addr())
	}
	// Once the pool is closing, a connection is closed as soon as its last stream ends.
	cc.SetStateHook(func(cc *http.ClientConn) {
		if p.h2.closing.Load() {
			closeIfIdle(cc)
		}
	})
	return cc, nil
}

func closeIfIdle(cc *http.ClientConn) {
	if cc.InFlight() == 0 {
		cc.Close()
	}
}

func (p *Pool) h2StatsLocked() (active, idle int) {
	for _, cc := range p.h2.conns {
		switch {
		case cc.Err() != nil:
		case cc.InFlight() > 0:
			active++
		default:
			idle++
		}
	}
	return active, idle
}

func wrapH2(p *Pool, c net.Conn) net.Conn { return &h2Conn{Conn: c, pool: p} }

// h2Conn gives a connection's slot back to the limits when net/http closes it.
type h2Conn struct {
	net.Conn
	pool   *Pool
	closed atomic.Bool
}

func (c *h2Conn) Close() error {
	err := c.Conn.Close()
	if !c.closed.Swap(true) {
		c.pool.release()
		c.pool.opts.Stats.destroyed()
	}
	return err
}
