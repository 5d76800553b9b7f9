package model

import "time"

// Tracing is a connection manager's tracing block with its provider
// (envoy.tracers.opentelemetry).
type Tracing struct {
	// Sampling percentages (0–100), Envoy's defaults 100 each: ClientSampling applies to
	// requests carrying x-client-trace-id, RandomSampling to the others, OverallSampling
	// caps both.
	ClientSampling  float64
	RandomSampling  float64
	OverallSampling float64
	// MaxPathTagLength bounds the http.url tag (Envoy's default 256).
	MaxPathTagLength uint32
	CustomTags       []CustomTag
	// SpawnUpstreamSpan gives each upstream attempt its own client span (default true).
	SpawnUpstreamSpan bool
	// Operation names the server span; "" uses the request's host and path.
	Operation string

	Provider OpenTelemetry
	// NodeID is the bootstrap's node.id, tagged on every span.
	NodeID string
}

// CustomTag adds a tag to every span: a literal or a request header's value.
type CustomTag struct {
	Tag           string
	Literal       string
	RequestHeader string // lower-case; "" for a literal
	DefaultValue  string // when the header is absent
}

// OpenTelemetry is the OTLP/gRPC exporter of envoy.tracers.opentelemetry.
type OpenTelemetry struct {
	ServiceName string
	// CollectorCluster is grpc_service.envoy_grpc.cluster_name.
	CollectorCluster string
	// CollectorAddress is host:port of the collector cluster's first endpoint, resolved when
	// the bootstrap loads; "" when the cluster is not known then (spans are then dropped).
	CollectorAddress string
	// Authority overrides the :authority of export calls (envoy_grpc.authority).
	Authority string
	// Timeout bounds one export call (grpc_service.timeout; default 5s).
	Timeout time.Duration
	// MaxCacheSize bounds the spans waiting for export (max_cache_size; default 1024).
	MaxCacheSize uint32
}
