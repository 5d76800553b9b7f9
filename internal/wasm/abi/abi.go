// Package abi implements the proxy-wasm application binary interface on the host side: the
// host functions a module imports from "env" and the callbacks it exports, for ABI versions
// 0.1.0, 0.2.0 and 0.2.1 (v0_1.go and v0_2.go hold what differs between them).
//
// An Instance is the host-side state of one module instance. Host functions find it through
// the context.Context of the call into the guest, which is built once per instance, so a
// callback costs no allocation on the host side. Every pointer and length from the guest is
// bounds-checked; a bad one returns InvalidMemoryAccess to the guest, never a host panic.
package abi

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// Status is proxy_status_t / WasmResult, what every host function returns.
type Status uint32

// Status values (proxy-wasm-cpp-host's WasmResult, a superset of the spec's).
const (
	StatusOK                  Status = 0
	StatusNotFound            Status = 1
	StatusBadArgument         Status = 2
	StatusSerializationFailed Status = 3
	StatusInvalidMemoryAccess Status = 6
	StatusEmpty               Status = 7
	StatusCasMismatch         Status = 8
	StatusInternalFailure     Status = 10
	StatusUnimplemented       Status = 12
)

// Action is what a stream callback returns.
type Action uint32

// Actions of ABI 0.2.x (0.1.0 has the same two values). Header callbacks may also return
// Envoy's other header statuses, as Higress's ABI 0.2.100 documents (and Envoy casts any
// value to its status): ContinueAndEndStream, StopAllIterationAndBuffer and
// StopAllIterationAndWatermark.
const (
	ActionContinue                     Action = 0
	ActionPause                        Action = 1
	ActionContinueAndEndStream         Action = 2
	ActionStopAllIterationAndBuffer    Action = 3
	ActionStopAllIterationAndWatermark Action = 4
)

// LogLevel is proxy_log_level_t.
type LogLevel uint32

// Log levels.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

var logLevelNames = [...]string{"trace", "debug", "info", "warning", "error", "critical"}

func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "unknown"
}

// BufferType is proxy_buffer_type_t.
type BufferType uint32

// Buffer types.
const (
	BufferRequestBody      BufferType = 0
	BufferResponseBody     BufferType = 1
	BufferDownstreamData   BufferType = 2
	BufferUpstreamData     BufferType = 3
	BufferHTTPCallResponse BufferType = 4
	BufferGRPCReceive      BufferType = 5
	BufferVMConfiguration  BufferType = 6
	BufferPluginConfig     BufferType = 7
	BufferCallData         BufferType = 8
)

// MapType is proxy_map_type_t.
type MapType uint32

// Header map types.
const (
	MapRequestHeaders       MapType = 0
	MapRequestTrailers      MapType = 1
	MapResponseHeaders      MapType = 2
	MapResponseTrailers     MapType = 3
	MapGRPCReceiveMetadata  MapType = 4
	MapGRPCReceiveTrailing  MapType = 5
	MapHTTPCallResponse     MapType = 6
	MapHTTPCallResponseTrls MapType = 7
)

// StreamType is proxy_stream_type_t.
type StreamType uint32

// Stream types.
const (
	StreamRequest    StreamType = 0
	StreamResponse   StreamType = 1
	StreamDownstream StreamType = 2
	StreamUpstream   StreamType = 3
)

// Logger receives the plugin's log lines and its WASI stdout/stderr. msg aliases guest memory
// and is valid only during the call: an implementation that keeps it copies it.
type Logger interface {
	Log(level LogLevel, plugin string, msg []byte)
}

// ForeignFunc is a host function a plugin calls by name (proxy_call_foreign_function). It
// appends its result to dst and returns it.
type ForeignFunc func(dst, args []byte) ([]byte, error)

// HTTPCallRequest is a plugin's proxy_http_call. The strings and slices are the host's own
// copies; they stay valid until the response is delivered.
type HTTPCallRequest struct {
	Cluster  string
	Headers  []header.Field // pseudo-headers (:method, :path, :authority) included, as sent
	Body     []byte
	Trailers []header.Field
	Timeout  time.Duration
}

// HTTPCallResponse is what the dispatcher got back. A failed call (no response) is reported
// to the plugin as a response with no headers, as Envoy does.
type HTTPCallResponse struct {
	Headers  []header.Field // ":status" first
	Body     []byte
	Trailers []header.Field
}

// HTTPCaller sends a plugin's HTTP call to a cluster. The adapter implements it over Nuncio's
// clusters; it blocks in the stream's goroutine and must return when ctx is done.
type HTTPCaller interface {
	HTTPCall(ctx context.Context, req *HTTPCallRequest) (*HTTPCallResponse, error)
}

// PluginInfo is what every instance of one plugin shares. It is immutable once instances
// exist, except for the process-wide stores it points to, which are safe for concurrent use.
type PluginInfo struct {
	Name     string
	RootID   string
	VMID     string
	Config   []byte // plugin_config.configuration
	VMConfig []byte // vm_config.configuration
	LogLevel LogLevel
	Log      Logger
	Shared   *SharedData
	Queues   *Queues
	Metrics  *Metrics
	Foreign  map[string]ForeignFunc
	Caller   HTTPCaller
	// OnQueueReady is called (from any goroutine) when an item is enqueued on a queue that
	// this plugin registered.
	OnQueueReady func(queueID uint32)
}

type instanceKey struct{}

// instanceOf finds the Instance a host function runs for. Host functions are only reachable
// through Instance calls, whose context carries it.
func instanceOf(ctx context.Context) *Instance {
	i, _ := ctx.Value(instanceKey{}).(*Instance)
	return i
}

// memory returns the guest's memory, or nil when the instance is gone.
func (i *Instance) memory() api.Memory { return i.mod.Memory() }
