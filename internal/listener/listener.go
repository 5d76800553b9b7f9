// Package listener accepts downstream connections: it binds each configured listener, selects a
// filter chain per connection (destination port, SNI, transport protocol, ALPN, in Envoy's
// precedence), terminates TLS, enforces connection limits and drains gracefully when a
// listener is removed or the process shuts down.
//
// A Compiled is built per config update and swapped in atomically; a connection keeps the
// Compiled it was accepted with. Each connection costs one goroutine, the one that calls the
// chain's ChainHandler.
package listener

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// ChainHandler serves connections that selected one filter chain (the HTTP connection manager
// implements it).
//
// c is a *tls.Conn when the chain terminated TLS; otherwise the accepted connection, possibly
// wrapped to replay bytes the listener peeked at (such a wrapper has NetConn and CloseWrite).
// ServeConn owns c until it returns; the listener then closes c, so a handler need not. ctx is
// cancelled when the connection is force-closed at the end of a drain. A handler must watch
// info.Draining: once it is closed the handler should finish in-flight work, tell the peer
// (Connection: close, GOAWAY) and return, closing idle connections at once.
type ChainHandler interface {
	ServeConn(ctx context.Context, c net.Conn, info ConnInfo)
}

// ConnInfo describes an accepted connection and the chain it selected.
type ConnInfo struct {
	Listener   string
	ChainName  string
	LocalAddr  netip.AddrPort
	RemoteAddr netip.AddrPort
	// TLS is the handshake state when the chain terminated TLS, else nil.
	TLS *tls.ConnectionState
	// ALPN is the negotiated application protocol ("" if none or no TLS).
	ALPN string
	// SNI is the server name the client asked for ("" if none or no TLS).
	SNI string
	// TransportProtocol is TransportTLS or TransportRaw.
	TransportProtocol string
	// Draining is closed when the listener starts draining. It is shared by all connections of
	// the listener, so it costs nothing per connection.
	Draining <-chan struct{}
	// DrainContext is cancelled when Draining is closed; context.AfterFunc on it lets a
	// handler react to the drain without a goroutine per connection.
	DrainContext context.Context
}

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger
	// DrainTime bounds a graceful drain; connections still open after it are closed. Zero
	// means Envoy's default of 600 s.
	DrainTime time.Duration
	// HandshakeTimeout bounds the TLS handshake (default 10 s).
	HandshakeTimeout time.Duration
	// ListenerFiltersTimeout bounds the wait for a client's first bytes when the chain depends
	// on them (Envoy's listener_filters_timeout, default 15 s).
	ListenerFiltersTimeout time.Duration
	// Stats receives the listeners' stats under "listener.<address>." (nil = stats.Default).
	Stats *stats.Store
}

const (
	defaultDrainTime        = 600 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
	defaultFiltersTimeout   = 15 * time.Second
)

// Status reports one listener.
type Status struct {
	Name string
	// Address is the bound address, which tells the port when the config asked for port 0.
	Address           netip.AddrPort
	ActiveConnections int
	// Rejected counts connections closed because of the connection limit.
	Rejected uint64
	// NoChainMatch counts connections closed because no filter chain matched.
	NoChainMatch uint64
	// Draining is set for a listener that was removed and still has connections.
	Draining bool
}
