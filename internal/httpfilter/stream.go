package httpfilter

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// Stream is one request/response exchange as filters see it, whatever the downstream codec.
// The connection manager owns it, fills it and recycles it when the stream is done; filters
// must not keep it (or strings from its header maps) past OnStreamDone.
type Stream struct {
	Request          header.Map
	RequestTrailers  header.Map
	Response         header.Map
	ResponseTrailers header.Map

	// Route is the route match result, nil when nothing matched. The router honours it;
	// filters that change what the match depends on call ClearRouteCache.
	Route Route

	Downstream Downstream
	Info       StreamInfo

	// Metadata is the stream's dynamic metadata: what filters publish for later filters
	// (jwt_authn's verified claims for RBAC, …). It starts empty on every stream.
	Metadata Metadata

	// AllowWebSocket is the connection manager's upgrade_configs setting for websocket; a
	// route may override it.
	AllowWebSocket bool

	// BufferLimit is how much of the request body the connection manager buffers for a
	// filter (StopAndBuffer) and a filter may keep (the router's retry buffer defaults to
	// it): the listener's per_connection_buffer_limit_bytes, unless a filter changes it for
	// the stream, as Envoy's setDecoderBufferLimit. ResponseBufferLimit is the same for the
	// response body (setEncoderBufferLimit).
	BufferLimit         int
	ResponseBufferLimit int

	// Ctx is cancelled when the downstream resets the stream or closes the connection, when
	// the stream times out, and when it ends. A filter that blocks (an ext_authz or
	// rate-limit call, a JWKS fetch) selects on it; see the package documentation.
	Ctx context.Context

	// Span is the request's trace span when the connection manager traces it, else nil. The
	// router calls Span.UpstreamAttempt before each upstream attempt.
	Span Span

	sink Sink

	// newBody is a body chunk a filter put in place of the one it was given (ReplaceBody).
	newBody     []byte
	bodyReplace bool
}

// Route is the route selected for a stream, as the filter contract sees it. The connection
// manager's route tables implement it (*route.Entry); the router, which acts on the whole
// entry, converts it back. Keeping it an interface keeps this package free of clusters and
// upstream pools, which a route entry refers to.
type Route interface {
	// RouteName is the route's name ("" when it has none).
	RouteName() string
}

// Downstream describes the client connection.
type Downstream struct {
	RemoteAddr netip.AddrPort
	// DirectRemoteAddr is the peer of the TCP connection; RemoteAddr may differ once
	// X-Forwarded-For has been trusted.
	DirectRemoteAddr netip.AddrPort
	LocalAddr        netip.AddrPort
	TLS              *tls.ConnectionState // nil for plaintext
	Protocol         string               // "HTTP/1.0", "HTTP/1.1", "HTTP/2"
	Secure           bool                 // TLS to us (drives x-forwarded-proto)
}

// StreamInfo is what access logs and stats read about a finished stream.
type StreamInfo struct {
	Start            time.Time
	ResponseFlags    ResponseFlags
	ResponseDetails  string
	RouteName        string
	UpstreamCluster  string
	UpstreamHost     string
	UpstreamFailure  string // UPSTREAM_TRANSPORT_FAILURE_REASON
	BytesReceived    int64
	BytesSent        int64
	FirstUpstreamTx  time.Time
	FirstUpstreamRx  time.Time
	LastDownstreamTx time.Time
	LastDownstreamRx time.Time // the request's last byte; zero until a request body ends
}

// Span is the connection manager's trace span of one request, as the router sees it.
type Span interface {
	// UpstreamAttempt opens a client span for one upstream attempt (ending the previous
	// attempt's) and writes its trace context into h, the request headers going upstream.
	UpstreamAttempt(s *Stream, h *header.Map)
}

// Sink is how filters send the response (or a local reply) downstream. The connection manager
// implements it; it runs the response filters before the codec writes.
type Sink interface {
	EncodeHeaders(s *Stream, end bool)
	EncodeBody(s *Stream, chunk []byte, end bool)
	EncodeTrailers(s *Stream)
	SendLocalReply(s *Stream, code int, body string, flags ResponseFlags, details string)
	ClearRouteCache(s *Stream)
	// ResponseStarted reports whether response headers have gone downstream.
	ResponseStarted(s *Stream) bool
	// Hijack hands over the downstream connection after an accepted upgrade (101), with any
	// bytes already read from it. It ends the stream for the connection manager; ok is false
	// when the codec cannot (HTTP/2).
	Hijack(s *Stream) (c net.Conn, buffered []byte, ok bool)
}

// ReplaceBody makes b, when called from OnRequestBody or OnResponseBody, what the following
// filters and the codec get instead of the chunk the callback was given (a body-rewriting
// filter, usually on a body it buffered whole with StopAndBuffer). The connection manager
// copies b when the callback returns. Headers that describe the body (content-length) are
// the filter's to fix while they have not gone on.
func (s *Stream) ReplaceBody(b []byte) { s.newBody, s.bodyReplace = b, true }

// TakeBody is for the connection manager, after a body callback: it returns the chunk that
// goes on, the one the callback replaced chunk with or chunk itself.
func (s *Stream) TakeBody(chunk []byte) ([]byte, bool) {
	if !s.bodyReplace {
		return chunk, false
	}
	b := s.newBody
	s.newBody, s.bodyReplace = nil, false
	return b, true
}

// SetSink is called by the connection manager when it sets up a stream.
func (s *Stream) SetSink(k Sink) { s.sink = k }

// EncodeHeaders sends s.Response through the response filters and downstream.
func (s *Stream) EncodeHeaders(end bool) { s.sink.EncodeHeaders(s, end) }

// EncodeBody sends a response body chunk. The chunk may be reused once the call returns.
func (s *Stream) EncodeBody(chunk []byte, end bool) { s.sink.EncodeBody(s, chunk, end) }

// EncodeTrailers sends s.ResponseTrailers, ending the response.
func (s *Stream) EncodeTrailers() { s.sink.EncodeTrailers(s) }

// SendLocalReply answers the request from the proxy itself, through the response filters,
// and records the response flags and details for logs. The caller then returns Stop.
func (s *Stream) SendLocalReply(code int, body string, flags ResponseFlags, details string) {
	s.sink.SendLocalReply(s, code, body, flags, details)
}

// ClearRouteCache re-runs route selection with the current request headers.
func (s *Stream) ClearRouteCache() { s.sink.ClearRouteCache(s) }

// ResponseStarted reports whether response headers have been sent downstream (after which a
// failure can only reset the stream).
func (s *Stream) ResponseStarted() bool { return s.sink.ResponseStarted(s) }

// Hijack takes over the downstream connection after a 101 response (see Sink.Hijack).
func (s *Stream) Hijack() (net.Conn, []byte, bool) { return s.sink.Hijack(s) }
