// Package tracing implements envoy.tracers.opentelemetry for the HTTP connection manager: it
// continues a W3C (traceparent/tracestate) or B3 (single b3 header or x-b3-*) trace context
// from the request, decides sampling as Envoy does (client, random and overall percentages,
// an upstream's decision carried in the context wins), records a server span per request and
// a client span per upstream attempt with Envoy's tags, writes the context into the headers
// going upstream, and exports sampled spans over OTLP/gRPC in batches.
//
// Export is off the request's path: a finished span is handed to a bounded queue drained by
// one goroutine per collector, which sends a batch when it holds 512 spans or once a second.
// When the queue is full, spans are dropped and counted.
package tracing
