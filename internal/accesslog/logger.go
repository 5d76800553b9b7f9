package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Logger is one compiled access_log entry: a filter, a format and an output. It is immutable
// and shared by every stream of its connection manager.
type Logger struct {
	Name   string
	filter Filter
	format *Formatter
	out    *output
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Log writes the line for a finished stream, if the filter lets it through. now is when the
// stream ended. The line is formatted at once (the stream's headers are valid only until it
// is recycled) and handed to the output's writer; Log never waits for I/O.
func (l *Logger) Log(s *httpfilter.Stream, now time.Time) {
	if l.filter != nil && !l.filter.Allow(s, now) {
		return
	}
	bp := linePool.Get().(*[]byte)
	b := l.format.Append((*bp)[:0], s, now)
	l.out.write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		linePool.Put(bp)
	}
}

// Factory compiles one access logger type's typed_config into its format and output path.
type Factory struct {
	Name     string
	TypeURLs []string
	// New returns the logger's formatter and output path ("/dev/stdout" for stdout).
	New func(m proto.Message) (f *Formatter, path string, err error)
}

// Registry maps typed_config type URLs to access logger factories.
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]*Factory{}} }

// Register adds f under each of its type URLs; a duplicate panics (call it from init).
func (r *Registry) Register(f *Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range f.TypeURLs {
		if _, dup := r.m[u]; dup {
			panic("accesslog: duplicate registration of " + u)
		}
		r.m[u] = f
	}
}

// ByTypeURL finds the factory for a typed_config type URL.
func (r *Registry) ByTypeURL(typeURL string) (*Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.m[typeURL]
	return f, ok
}

// Default holds the built-in loggers.
var Default = NewRegistry()

const typePrefix = "type.googleapis.com/"

func init() {
	Default.Register(&Factory{
		Name:     "envoy.access_loggers.file",
		TypeURLs: []string{typePrefix + "envoy.extensions.access_loggers.file.v3.FileAccessLog"},
		New:      newFile,
	})
	Default.Register(&Factory{
		Name:     "envoy.access_loggers.stdout",
		TypeURLs: []string{typePrefix + "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"},
		New: func(m proto.Message) (*Formatter, string, error) {
			f, err := formatFrom(m.(*streamv3.StdoutAccessLog).GetLogFormat(), "log_format")
			return f, "/dev/stdout", err
		},
	})
	Default.Register(&Factory{
		Name:     "envoy.access_loggers.stderr",
		TypeURLs: []string{typePrefix + "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"},
		New: func(m proto.Message) (*Formatter, string, error) {
			f, err := formatFrom(m.(*streamv3.StderrAccessLog).GetLogFormat(), "log_format")
			return f, "/dev/stderr", err
		},
	})
}

func newFile(m proto.Message) (*Formatter, string, error) {
	c := m.(*filev3.FileAccessLog)
	if c.GetPath() == "" {
		return nil, "", fmt.Errorf("path: %w", errNoPath)
	}
	var f *Formatter
	var err error
	switch v := c.GetAccessLogFormat().(type) {
	case nil:
		f, err = NewFormatter("", false)
	case *filev3.FileAccessLog_Format:
		f, err = NewFormatter(v.Format, false)
		err = fieldErr("format", err)
	case *filev3.FileAccessLog_JsonFormat:
		f, err = NewJSONFormatter(v.JsonFormat, false)
		err = fieldErr("json_format", err)
	case *filev3.FileAccessLog_TypedJsonFormat:
		f, err = NewJSONFormatter(v.TypedJsonFormat, false)
		err = fieldErr("typed_json_format", err)
	case *filev3.FileAccessLog_LogFormat:
		f, err = formatFrom(v.LogFormat, "log_format")
	}
	return f, c.GetPath(), err
}

func fieldErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", field, err)
}

// maxFormatFile bounds a text_format_source file.
const maxFormatFile = 64 << 10

// formatFrom compiles a SubstitutionFormatString; nil means Envoy's default format.
func formatFrom(s *corev3.SubstitutionFormatString, field string) (*Formatter, error) {
	if s == nil {
		return NewFormatter("", false)
	}
	if len(s.GetFormatters()) > 0 {
		return nil, fmt.Errorf("%s.formatters: not supported", field)
	}
	omit := s.GetOmitEmptyValues()
	switch v := s.GetFormat().(type) {
	case *corev3.SubstitutionFormatString_TextFormat:
		f, err := NewFormatter(v.TextFormat, omit)
		return f, fieldErr(field+".text_format", err)
	case *corev3.SubstitutionFormatString_TextFormatSource:
		text, err := dataSource(v.TextFormatSource)
		if err != nil {
			return nil, fieldErr(field+".text_format_source", err)
		}
		if text == "" {
			return nil, fmt.Errorf("%s.text_format_source: empty format", field)
		}
		f, err := NewFormatter(text, omit)
		return f, fieldErr(field+".text_format_source", err)
	case *corev3.SubstitutionFormatString_JsonFormat:
		f, err := NewJSONFormatter(v.JsonFormat, omit)
		return f, fieldErr(field+".json_format", err)
	}
	return NewFormatter("", omit)
}

func dataSource(ds *corev3.DataSource) (string, error) {
	switch v := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		return v.InlineString, nil
	case *corev3.DataSource_InlineBytes:
		return string(v.InlineBytes), nil
	case *corev3.DataSource_Filename:
		f, err := os.Open(v.Filename)
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxFormatFile+1))
		if err != nil {
			return "", err
		}
		if len(b) > maxFormatFile {
			return "", fmt.Errorf("%s is larger than %d bytes", v.Filename, maxFormatFile)
		}
		return string(b), nil
	}
	return "", errors.New("one of inline_string, inline_bytes, filename required")
}

// Compile builds a logger from an access_log entry using reg's factories. Errors name the
// field under the entry that is wrong.
func Compile(al *accesslogv3.AccessLog, reg *Registry) (*Logger, error) {
	tc := al.GetTypedConfig()
	if tc == nil {
		return nil, errors.New("typed_config: required")
	}
	fac, ok := reg.ByTypeURL(tc.GetTypeUrl())
	if !ok {
		return nil, fmt.Errorf("typed_config: unknown access logger type %s", tc.GetTypeUrl())
	}
	m, err := tc.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config: %v", err)
	}
	f, path, err := fac.New(m)
	if err != nil {
		return nil, fmt.Errorf("typed_config.%w", err)
	}
	l := &Logger{Name: al.GetName(), format: f}
	if l.Name == "" {
		l.Name = fac.Name
	}
	if al.GetFilter() != nil {
		if l.filter, err = compileFilter(al.GetFilter()); err != nil {
			return nil, fmt.Errorf("filter.%w", err)
		}
	}
	if l.out, err = openOutput(path); err != nil {
		return nil, fmt.Errorf("typed_config.path: %v", err)
	}
	return l, nil
}
