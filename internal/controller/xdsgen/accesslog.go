package xdsgen

import (
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// The access log is the connection manager's access_log: the stdout or stderr logger for
// those streams, the file logger otherwise.
func init() {
	register(&feature{name: "accesslog", order: 20, hcm: func(h *hcmv3.HttpConnectionManager, l *ir.Listener) {
		for _, a := range l.HTTP.AccessLog {
			h.AccessLog = append(h.AccessLog, accessLog(a))
		}
	}})
}

func accessLog(a *ir.AccessLog) *accesslogv3.AccessLog {
	var format *corev3.SubstitutionFormatString
	switch {
	case len(a.JSON) > 0:
		fields := make(map[string]any, len(a.JSON))
		for k, v := range a.JSON {
			fields[k] = v
		}
		st, _ := structpb.NewStruct(fields) // string values always convert
		format = &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: st}}
	case a.Format != "":
		f := a.Format
		if !strings.HasSuffix(f, "\n") {
			f += "\n" // Envoy writes lines exactly as formatted
		}
		format = &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormat{TextFormat: f}}
	}
	var name string
	var cfg proto.Message
	switch a.Path {
	case "", "/dev/stdout":
		c := &streamv3.StdoutAccessLog{}
		if format != nil {
			c.AccessLogFormat = &streamv3.StdoutAccessLog_LogFormat{LogFormat: format}
		}
		name, cfg = "envoy.access_loggers.stdout", c
	case "/dev/stderr":
		c := &streamv3.StderrAccessLog{}
		if format != nil {
			c.AccessLogFormat = &streamv3.StderrAccessLog_LogFormat{LogFormat: format}
		}
		name, cfg = "envoy.access_loggers.stderr", c
	default:
		fl := &filev3.FileAccessLog{Path: a.Path}
		if format != nil {
			fl.AccessLogFormat = &filev3.FileAccessLog_LogFormat{LogFormat: format}
		}
		name, cfg = "envoy.access_loggers.file", fl
	}
	return &accesslogv3.AccessLog{Name: name, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: typed(cfg)}}
}
