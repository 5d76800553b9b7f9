package simple

import (
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// accessLog translates a listener's accessLog into the connection manager's access_log: the
// stdout or stderr logger for those streams, the file logger otherwise.
func (t *translator) accessLog(a *v1alpha1.AccessLog) []*accesslogv3.AccessLog {
	if a == nil {
		return nil
	}
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
	switch path := a.Path; path {
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
		fl := &filev3.FileAccessLog{Path: t.file(path).GetFilename()}
		if format != nil {
			fl.AccessLogFormat = &filev3.FileAccessLog_LogFormat{LogFormat: format}
		}
		name, cfg = "envoy.access_loggers.file", fl
	}
	return []*accesslogv3.AccessLog{{
		Name:       name,
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: typed(cfg)},
	}}
}
