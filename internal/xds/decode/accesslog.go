package decode

import (
	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&accesslogv3.AccessLog{}, "name", "filter", "typed_config")
	_ = allow(&accesslogv3.AccessLogFilter{}, "status_code_filter", "duration_filter",
		"not_health_check_filter", "and_filter", "or_filter", "response_flag_filter")
	_ = allow(&accesslogv3.StatusCodeFilter{}, "comparison")
	_ = allow(&accesslogv3.DurationFilter{}, "comparison")
	_ = allow(&accesslogv3.ComparisonFilter{}, "op", "value")
	_ = allow(&accesslogv3.AndFilter{}, "filters")
	_ = allow(&accesslogv3.OrFilter{}, "filters")
	_ = allow(&accesslogv3.ResponseFlagFilter{}, "flags")
	_ = allow(&accesslogv3.NotHealthCheckFilter{})
	_ = allow(&corev3.RuntimeUInt32{}, "default_value", "runtime_key")
	_ = allow(&filev3.FileAccessLog{}, "path", "format", "json_format", "typed_json_format", "log_format")
	_ = allow(&streamv3.StdoutAccessLog{}, "log_format")
	_ = allow(&streamv3.StderrAccessLog{}, "log_format")
	_ = allow(&corev3.SubstitutionFormatString{}, "text_format", "json_format", "text_format_source",
		"omit_empty_values", "content_type", "json_format_options")
	_ = allow(&corev3.JsonFormatOptions{}, "sort_properties")
)

// The connection manager's allow list lives in hcm.go; these fields are decoded here and in
// tracing.go. init runs after every file's allow lists, whatever the file order.
func init() {
	allowAlso(&hcmv3.HttpConnectionManager{}, "access_log", "tracing")
}

// allowAlso adds fields to a message type's supported set, which another decoder may declare
// too (call it from init).
func allowAlso(m proto.Message, fields ...protoreflect.Name) {
	md := m.ProtoReflect().Descriptor()
	set := supported[md.FullName()]
	if set == nil {
		set = map[protoreflect.Name]bool{}
		supported[md.FullName()] = set
	}
	for _, f := range fields {
		if md.Fields().ByName(f) == nil {
			panic("decode: " + string(md.FullName()) + " has no field " + string(f))
		}
		set[f] = true
	}
}

// observability decodes the connection manager's access_log and tracing fields.
func observability(p path, m *hcmv3.HttpConnectionManager, out *model.HTTPConnectionManager) error {
	var err error
	if out.AccessLogs, err = accessLogs(p.field("access_log"), m.GetAccessLog()); err != nil {
		return err
	}
	out.Tracing, err = tracing(p.field("tracing"), m.GetTracing())
	return err
}

// accessLogs compiles access_log entries through the access logger registry. Output files
// are opened now, so a config naming a path that cannot be written is rejected whole.
func accessLogs(p path, als []*accesslogv3.AccessLog) ([]any, error) {
	var out []any
	for i, al := range als {
		l, err := accesslog.Compile(al, accesslog.Default)
		if err != nil {
			return nil, p.index(i).errorf("%v", err)
		}
		out = append(out, l)
	}
	return out, nil
}
