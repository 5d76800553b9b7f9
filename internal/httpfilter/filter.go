// Package httpfilter defines the HTTP filter contract and a registry of filter factories keyed
// by the type URL of their typed_config.
//
// There are three lifetimes, as in Envoy. A Factory is registered once per type URL at init. A
// Config is built by the factory once per configuration update from the validated proto; it is
// immutable and shared by every stream. A Filter is made by the Config for each stream and holds
// that stream's state (stateless filters return one shared value).
//
// A filter implements any of the phase interfaces (RequestHeadersFilter, RequestBodyFilter, …);
// the connection manager detects which once, when the chain is built, and dispatches from
// per-phase slices. Request phases run in configuration order, response phases in reverse.
package httpfilter

import (
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/header"
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
	// NewOverride compiles a typed_per_filter_config entry.
	NewOverride(m proto.Message) (Config, error)
}

// Config is a compiled, immutable filter configuration shared by all streams.
type Config interface {
	NewFilter(s *Stream) Filter
}

// Filter is a per-stream filter instance implementing one or more phase interfaces.
type Filter any

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
