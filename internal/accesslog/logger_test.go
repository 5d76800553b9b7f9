package accesslog

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func entry(t *testing.T, m proto.Message, f *accesslogv3.AccessLogFilter) *accesslogv3.AccessLog {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &accesslogv3.AccessLog{Name: "test", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}, Filter: f}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	Flush()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileLogger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Compile(entry(t, &filev3.FileAccessLog{
		Path:            path,
		AccessLogFormat: &filev3.FileAccessLog_Format{Format: "%REQ(:METHOD)% %RESPONSE_CODE%\n"},
	}, nil), Default)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := testStream()
			for j := 0; j < 100; j++ {
				l.Log(s, testEnd)
			}
		}()
	}
	wg.Wait()
	got := readLog(t, path)
	if n := strings.Count(got, "GET 200\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
	if len(got) != 800*len("GET 200\n") {
		t.Errorf("interleaved output: %d bytes", len(got))
	}
}

func TestFileLoggerTimerFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Compile(entry(t, &filev3.FileAccessLog{Path: path}, nil), Default)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(testStream(), testEnd)
	var b []byte
	wait.For(t, "the line written without an explicit flush", func() bool {
		b, _ = os.ReadFile(path)
		return len(b) > 0
	})
	if !strings.HasPrefix(string(b), "[2024-03-05T07:08:09.123Z] \"GET") {
		t.Errorf("got %q", b)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Compile(entry(t, &filev3.FileAccessLog{
		Path: path, AccessLogFormat: &filev3.FileAccessLog_Format{Format: "line\n"},
	}, nil), Default)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(testStream(), testEnd)
	Flush()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Log(testStream(), testEnd) // still goes to the renamed file until the reopen
	Reopen()
	Flush()
	l.Log(testStream(), testEnd)
	if got := readLog(t, path+".1"); got != "line\nline\n" {
		t.Errorf("rotated file: %q", got)
	}
	if got := readLog(t, path); got != "line\n" {
		t.Errorf("new file: %q", got)
	}
}

// A writer that cannot keep up drops lines instead of blocking requests.
func TestDropWhenQueueFull(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	o := &output{
		path: "pipe", cur: batchPool.Get().(*batch), queue: make(chan *batch, queueLength),
		flush: make(chan chan struct{}), reopen: make(chan struct{}, 1), f: w, std: true,
	}
	go o.run() // blocks in a write to the unread pipe once its buffer fills
	line := []byte(strings.Repeat("x", 1023) + "\n")
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ { // 10 MiB: far beyond the pipe and the queue
			o.write(line)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("write blocked")
	}
	if o.Stats.Dropped.Value() == 0 {
		t.Error("no line counted as dropped")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		al   *accesslogv3.AccessLog
		want string
	}{
		{name: "no typed_config", al: &accesslogv3.AccessLog{}, want: "typed_config: required"},
		{name: "no path", al: entry(t, &filev3.FileAccessLog{}, nil), want: "typed_config.path: path required"},
		{name: "bad format", al: entry(t, &filev3.FileAccessLog{Path: "/dev/stdout", AccessLogFormat: &filev3.FileAccessLog_Format{Format: "%BOGUS%"}}, nil), want: "typed_config.format: format position 0: %BOGUS% not supported"},
		{name: "unknown type", al: entry(t, &corev3.Node{}, nil), want: "unknown access logger type"},
		{name: "bad flag", al: entry(t, &streamv3.StdoutAccessLog{}, &accesslogv3.AccessLogFilter{
			FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"XX"}}},
		}), want: `filter.response_flag_filter.flags[0]: unknown response flag "XX"`},
		{name: "single and", al: entry(t, &streamv3.StdoutAccessLog{}, &accesslogv3.AccessLogFilter{
			FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{Filters: []*accesslogv3.AccessLogFilter{{}}}},
		}), want: "at least two filters"},
		{name: "unopenable", al: entry(t, &filev3.FileAccessLog{Path: "/nonexistent-dir/x/access.log"}, nil), want: "typed_config.path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.al, Default)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSubstitutionFormatString(t *testing.T) {
	for _, tc := range []struct {
		name string
		sfs  *corev3.SubstitutionFormatString
		want string
	}{
		{name: "text_format", sfs: &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormat{TextFormat: "%RESPONSE_CODE%\n"}}, want: "200\n"},
		{name: "text_format_source", sfs: &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_TextFormatSource{
			TextFormatSource: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "%PROTOCOL%\n"}},
		}}, want: "HTTP/1.1\n"},
		{name: "omit_empty", sfs: &corev3.SubstitutionFormatString{OmitEmptyValues: true, Format: &corev3.SubstitutionFormatString_TextFormat{TextFormat: "<%REQ(X-NOPE)%>"}}, want: "<>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := formatFrom(tc.sfs, "log_format")
			if err != nil {
				t.Fatal(err)
			}
			if got := string(f.Append(nil, testStream(), testEnd)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func cmp(op accesslogv3.ComparisonFilter_Op, v uint32) *accesslogv3.ComparisonFilter {
	return &accesslogv3.ComparisonFilter{Op: op, Value: &corev3.RuntimeUInt32{DefaultValue: v, RuntimeKey: "k"}}
}

func TestFilters(t *testing.T) {
	status := func(op accesslogv3.ComparisonFilter_Op, v uint32) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
			StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: cmp(op, v)}}}
	}
	dur := func(op accesslogv3.ComparisonFilter_Op, v uint32) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_DurationFilter{
			DurationFilter: &accesslogv3.DurationFilter{Comparison: cmp(op, v)}}}
	}
	flags := func(f ...string) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
			ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: f}}}
	}
	and := func(fs ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{AndFilter: &accesslogv3.AndFilter{Filters: fs}}}
	}
	or := func(fs ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
		return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{OrFilter: &accesslogv3.OrFilter{Filters: fs}}}
	}
	notHC := &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_NotHealthCheckFilter{NotHealthCheckFilter: &accesslogv3.NotHealthCheckFilter{}}}

	ok := testStream() // 200, 57 ms, no flags
	failed := testStream()
	failed.Response.Status = 503
	failed.Info.ResponseFlags = httpfilter.FlagUpstreamConnectFailure
	for _, tc := range []struct {
		name       string
		f          *accesslogv3.AccessLogFilter
		ok, failed bool
	}{
		{name: "status >= 400", f: status(accesslogv3.ComparisonFilter_GE, 400), ok: false, failed: true},
		{name: "status == 200", f: status(accesslogv3.ComparisonFilter_EQ, 200), ok: true, failed: false},
		{name: "status != 200", f: status(accesslogv3.ComparisonFilter_NE, 200), ok: false, failed: true},
		{name: "status <= 299", f: status(accesslogv3.ComparisonFilter_LE, 299), ok: true, failed: false},
		{name: "duration >= 50", f: dur(accesslogv3.ComparisonFilter_GE, 50), ok: true, failed: true},
		{name: "duration >= 100", f: dur(accesslogv3.ComparisonFilter_GE, 100), ok: false, failed: false},
		{name: "any flag", f: flags(), ok: false, failed: true},
		{name: "flag UF", f: flags("UF"), ok: false, failed: true},
		{name: "flag NR", f: flags("NR"), ok: false, failed: false},
		{name: "and", f: and(status(accesslogv3.ComparisonFilter_GE, 500), flags("UF")), ok: false, failed: true},
		{name: "and fails", f: and(status(accesslogv3.ComparisonFilter_GE, 500), flags("NR")), ok: false, failed: false},
		{name: "or", f: or(status(accesslogv3.ComparisonFilter_EQ, 200), flags("UF")), ok: true, failed: true},
		{name: "not health check", f: notHC, ok: true, failed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compileFilter(tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Allow(ok, testEnd); got != tc.ok {
				t.Errorf("200: got %v", got)
			}
			if got := f.Allow(failed, testEnd); got != tc.failed {
				t.Errorf("503 UF: got %v", got)
			}
		})
	}
}

func BenchmarkLog(b *testing.B) {
	path := filepath.Join(b.TempDir(), "access.log")
	a, _ := anypb.New(&filev3.FileAccessLog{Path: path})
	l, err := Compile(&accesslogv3.AccessLog{ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: a}}, Default)
	if err != nil {
		b.Fatal(err)
	}
	s := testStream()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Log(s, testEnd)
		}
	})
	Flush()
}
