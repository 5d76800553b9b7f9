// Package httpfilter defines the HTTP filter contract and a registry of filter factories keyed
// by the type URL of their typed_config.
//
// There are three lifetimes, as in Envoy. A Factory is registered once per type URL at init. A
// Config is built by the factory once per configuration update from the validated proto; it is
// immutable and shared by every stream. A Filter is made by the Config for each stream and holds
// that stream's state (stateless filters return one shared value).
//
// A Filter has a method for every phase; it embeds PassThrough for the phases it does not take
// part in, and its Config lists the ones it does in Phases. The connection manager reads Phases
// once, when it compiles a chain, into one dispatch slice per phase, and calls a filter only in
// those phases: a request costs no type assertion and no call to a filter that has nothing to
// do. Request phases run in configuration order, response phases in reverse.
//
// # Per-route configuration
//
// A route or virtual host may carry typed_per_filter_config for a filter, keyed by the
// filter's name in the chain. The connection manager selects the route before it makes the
// stream's filters and passes the most specific override (route, else virtual host) to
// NewFilter. An override can also enable, for that route, a filter the chain lists with
// disabled: true, or disable one that is enabled (Envoy's FilterConfig). The set of filters and
// their overrides are fixed when the stream's filters are made, as in Envoy: a route selected
// again after ClearRouteCache changes where the router forwards, not which filters run.
//
// # Blocking and cancellation
//
// A filter runs in its stream's goroutine and may block there: an ext_authz check, a remote
// JWKS fetch, a rate-limit service call or a wasm plugin's http_call is a plain blocking call
// made from OnRequestHeaders (or any other phase), and the stream waits for it; nothing else of
// the connection waits (HTTP/2 streams have their own goroutines; an HTTP/1.1 connection serves
// one request at a time anyway). Such a call must select on Stream.Ctx (pass it to the HTTP or
// gRPC client): the connection manager cancels it when the downstream resets the stream or
// closes the connection, and when the stream times out. A filter whose call was cancelled
// returns Stop without answering: nobody is left to answer, and the router is never called. A
// filter never holds a lock across I/O, since another stream may need the lock while this one
// waits on the network.
package httpfilter

import (
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Status tells the connection manager what to do after a filter callback.
type Status uint8

const (
	// Continue passes the headers or data to the next filter.
	Continue Status = iota
	// Stop ends iteration for this stream: the filter has answered (SendLocalReply) or has
	// taken over the stream (the router).
	Stop
	// StopAndBuffer holds the body until it is complete (up to the connection's buffer limit,
	// else 413) and then delivers it to the filter whole, with end set.
	StopAndBuffer
)

// Info describes a filter, as Envoy's extension metadata does.
type Info struct {
	Name     string   // e.g. "envoy.filters.http.router"
	TypeURLs []string // typed_config type URLs this factory accepts
	Terminal bool     // must be last in the chain (the router)
	Status   string   // "stable", "alpha", …
	// Posture is Envoy's security_posture, e.g. "robust_to_untrusted_downstream".
	Posture string
}

// Factory builds configs for one filter type.
type Factory interface {
	Info() Info
	// NewConfig validates m (of one of Info().TypeURLs) and compiles it. Errors name the field.
	NewConfig(m proto.Message) (Config, error)
	// NewOverride compiles a typed_per_filter_config entry. The result reaches the filter as
	// NewFilter's perRoute argument; it need not be able to make filters itself.
	NewOverride(m proto.Message) (Config, error)
}

// Config is a compiled, immutable filter configuration shared by all streams.
type Config interface {
	// Phases lists the phases the filters NewFilter makes take part in. It is read once per
	// chain; a filter is never called in a phase missing here.
	Phases() Phases
	// NewFilter makes the filter for one stream. perRoute is the most specific
	// typed_per_filter_config for this filter (the route's, else its virtual host's), as the
	// factory's NewOverride compiled it, or nil. The route is selected and s.Route set when
	// NewFilter is called.
	NewFilter(s *Stream, perRoute Config) Filter
}

// ScopedConfig is implemented by a Config whose stats live under its connection manager's
// scope (Envoy's http.<stat_prefix>.*, such as the router's no_route). The connection manager
// calls WithScope once, when it compiles its chain, and runs the Config it returns.
type ScopedConfig interface {
	Config
	WithScope(sc *stats.Scope) Config
}

// Phases is a set of filter phases.
type Phases uint8

// The phases, one per Filter method.
const (
	PhaseRequestHeaders Phases = 1 << iota
	PhaseRequestBody
	PhaseRequestTrailers
	PhaseResponseHeaders
	PhaseResponseBody
	PhaseResponseTrailers
	PhaseStreamDone
)

// Filter is a per-stream filter instance. It embeds PassThrough for the phases its Config does
// not list in Phases.
type Filter interface {
	RequestHeadersFilter
	RequestBodyFilter
	RequestTrailersFilter
	ResponseHeadersFilter
	ResponseBodyFilter
	ResponseTrailersFilter
	StreamDoneFilter
}

// RequestHeadersFilter sees the request headers; end is true when the request has no body.
type RequestHeadersFilter interface {
	OnRequestHeaders(s *Stream, h *header.Map, end bool) Status
}

// RequestBodyFilter sees request body chunks. The chunk is only valid during the call.
type RequestBodyFilter interface {
	OnRequestBody(s *Stream, chunk []byte, end bool) Status
}

// RequestTrailersFilter sees request trailers (which end the request).
type RequestTrailersFilter interface {
	OnRequestTrailers(s *Stream, t *header.Map) Status
}

// ResponseHeadersFilter sees the response headers before they are sent downstream.
type ResponseHeadersFilter interface {
	OnResponseHeaders(s *Stream, h *header.Map, end bool) Status
}

// ResponseBodyFilter sees response body chunks.
type ResponseBodyFilter interface {
	OnResponseBody(s *Stream, chunk []byte, end bool) Status
}

// ResponseTrailersFilter sees response trailers.
type ResponseTrailersFilter interface {
	OnResponseTrailers(s *Stream, t *header.Map) Status
}

// StreamDoneFilter is told when the stream ends, however it ends; the place to release
// per-stream resources.
type StreamDoneFilter interface {
	OnStreamDone(s *Stream)
}

// PassThrough implements every phase by passing it on. A filter embeds it and overrides the
// phases it takes part in.
type PassThrough struct{}

// OnRequestHeaders implements RequestHeadersFilter.
func (PassThrough) OnRequestHeaders(*Stream, *header.Map, bool) Status { return Continue }

// OnRequestBody implements RequestBodyFilter.
func (PassThrough) OnRequestBody(*Stream, []byte, bool) Status { return Continue }

// OnRequestTrailers implements RequestTrailersFilter.
func (PassThrough) OnRequestTrailers(*Stream, *header.Map) Status { return Continue }

// OnResponseHeaders implements ResponseHeadersFilter.
func (PassThrough) OnResponseHeaders(*Stream, *header.Map, bool) Status { return Continue }

// OnResponseBody implements ResponseBodyFilter.
func (PassThrough) OnResponseBody(*Stream, []byte, bool) Status { return Continue }

// OnResponseTrailers implements ResponseTrailersFilter.
func (PassThrough) OnResponseTrailers(*Stream, *header.Map) Status { return Continue }

// OnStreamDone implements StreamDoneFilter.
func (PassThrough) OnStreamDone(*Stream) {}

var _ Filter = PassThrough{}
