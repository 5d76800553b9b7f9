package accesslog

import (
	"crypto/tls"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

var (
	testStart = time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.UTC)
	testEnd   = testStart.Add(57 * time.Millisecond)
)

func testStream() *httpfilter.Stream {
	s := &httpfilter.Stream{}
	s.Request.Method = "GET"
	s.Request.Path = "/api/v1?x=1"
	s.Request.Authority = "example.com"
	s.Request.Scheme = "http"
	s.Request.Add("user-agent", "curl/8.0")
	s.Request.Add("x-request-id", "2b7b8b1e-7c0a-4c7e-9f0e-3c1c2f3a4b5c")
	s.Request.Add("x-forwarded-for", "10.1.2.3")
	s.Response.Status = 200
	s.Response.Add("x-envoy-upstream-service-time", "12")
	s.Response.Add("content-type", "text/plain")
	s.ResponseTrailers.Add("grpc-status", "0")
	s.Downstream = httpfilter.Downstream{
		RemoteAddr:       netip.MustParseAddrPort("192.0.2.7:51234"),
		DirectRemoteAddr: netip.MustParseAddrPort("198.51.100.1:40000"),
		LocalAddr:        netip.MustParseAddrPort("127.0.0.1:8080"),
		Protocol:         "HTTP/1.1",
	}
	s.Info = httpfilter.StreamInfo{
		Start:           testStart,
		RouteName:       "r1",
		UpstreamCluster: "backend",
		UpstreamHost:    "10.0.0.5:9000",
		BytesReceived:   0,
		BytesSent:       5,
		FirstUpstreamRx: testStart.Add(20 * time.Millisecond),
	}
	return s
}

func format(t *testing.T, f string, s *httpfilter.Stream) string {
	t.Helper()
	fm, err := NewFormatter(f, false)
	if err != nil {
		t.Fatalf("NewFormatter(%q): %v", f, err)
	}
	return string(fm.Append(nil, s, testEnd))
}

func TestDefaultFormat(t *testing.T) {
	got := format(t, "", testStream())
	want := `[2024-03-05T07:08:09.123Z] "GET /api/v1?x=1 HTTP/1.1" 200 - 0 5 57 12 "10.1.2.3" "curl/8.0" "2b7b8b1e-7c0a-4c7e-9f0e-3c1c2f3a4b5c" "example.com" "10.0.0.5:9000"` + "\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestOperators(t *testing.T) {
	s := testStream()
	s.Request.Add("x-envoy-original-path", "/original")
	s.Info.ResponseFlags = httpfilter.FlagUpstreamConnectFailure | httpfilter.FlagUpstreamRetryLimitExceeded
	s.Info.UpstreamFailure = "connection refused"
	s.Info.LastDownstreamRx = testStart.Add(3 * time.Millisecond)
	s.Downstream.TLS = &tls.ConnectionState{ServerName: "api.example.com"}
	for _, tc := range []struct {
		name, format, want string
	}{
		{name: "method", format: "%REQ(:METHOD)%", want: "GET"},
		{name: "alternative header", format: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", want: "/original"},
		{name: "alternative missing", format: "%REQ(X-MISSING?:AUTHORITY)%", want: "example.com"},
		{name: "host alias", format: "%REQ(HOST)%", want: "example.com"},
		{name: "missing header", format: "%REQ(X-NOPE)%", want: "-"},
		{name: "truncation", format: "%REQ(USER-AGENT):4%", want: "curl"},
		{name: "response header", format: "%RESP(CONTENT-TYPE)%", want: "text/plain"},
		{name: "trailer", format: "%TRAILER(GRPC-STATUS)%", want: "0"},
		{name: "protocol", format: "%PROTOCOL%", want: "HTTP/1.1"},
		{name: "code", format: "%RESPONSE_CODE%", want: "200"},
		{name: "details via upstream", format: "%RESPONSE_CODE_DETAILS%", want: "via_upstream"},
		{name: "flags", format: "%RESPONSE_FLAGS%", want: "UF,URX"},
		{name: "bytes", format: "%BYTES_RECEIVED% %BYTES_SENT%", want: "0 5"},
		{name: "durations", format: "%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION%", want: "57 3 20 37"},
		{name: "upstream", format: "%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%", want: "10.0.0.5:9000 backend -"},
		{name: "downstream", format: "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%", want: "192.0.2.7:51234 192.0.2.7 127.0.0.1:8080 198.51.100.1:40000"},
		{name: "route", format: "%ROUTE_NAME%", want: "r1"},
		{name: "failure", format: "%UPSTREAM_TRANSPORT_FAILURE_REASON%", want: "connection refused"},
		{name: "sni", format: "%REQUESTED_SERVER_NAME%", want: "api.example.com"},
		{name: "percent", format: "100%% %RESPONSE_CODE%", want: "100% 200"},
		{name: "start time custom", format: "%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%", want: "2024/03/05 07:08:09.123"},
		{name: "start time epoch", format: "%START_TIME(%s)%", want: "1709622489"},
		{name: "start time fractions", format: "%START_TIME(%f|%6f|%9f|%1f)%", want: "123456789|123456|123456789|1"},
		{name: "start time absl", format: "%START_TIME(%E6S|%E*S|%T|%F)%", want: "09.123456|09.123456789|07:08:09|2024-03-05"},
		{name: "start time names", format: "%START_TIME(%a %b %e %j %p %I %Z %z)%", want: "Tue Mar  5 065 AM 07 UTC +0000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := format(t, tc.format, s); got != tc.want {
				t.Errorf("%s: got %q, want %q", tc.format, got, tc.want)
			}
		})
	}
}

func TestAbsentValues(t *testing.T) {
	s := &httpfilter.Stream{}
	got := format(t, "%RESPONSE_CODE% %PROTOCOL% %UPSTREAM_HOST% %RESPONSE_DURATION% %DOWNSTREAM_REMOTE_ADDRESS% %START_TIME% %RESPONSE_CODE_DETAILS%", s)
	if want := "0 - - - - - -"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	fm, err := NewFormatter("[%UPSTREAM_HOST%]", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(fm.Append(nil, s, testEnd)); got != "[]" {
		t.Errorf("omit_empty_values: got %q", got)
	}
}

func TestLocalReplyDetails(t *testing.T) {
	s := testStream()
	s.Info.UpstreamHost = ""
	s.Info.ResponseDetails = "route_not_found"
	s.Info.ResponseFlags = httpfilter.FlagNoRoute
	s.Response.Status = 404
	if got := format(t, "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%", s); got != "404 NR route_not_found" {
		t.Errorf("got %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, f := range []string{
		"%NOPE%",
		"%REQ%",
		"%REQ()%",
		"%REQ(X",
		"%PROTOCOL",
		"%PROTOCOL(x)%",
		"%REQ(A?B?C)%",
		"%REQ(A):x%",
		"%START_TIME(%Q)%",
		"% %",
	} {
		if _, err := NewFormatter(f, false); err == nil {
			t.Errorf("%q: no error", f)
		}
	}
}

func TestJSONFormat(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{
		"code":     "%RESPONSE_CODE%",
		"method":   "%REQ(:METHOD)%",
		"missing":  "%REQ(X-NOPE)%",
		"line":     "%REQ(:METHOD)% %REQ(:PATH)% \"q\"",
		"start":    "%START_TIME%",
		"flags":    "%RESPONSE_FLAGS%",
		"duration": "%DURATION%",
		"fixed":    42,
		"nested":   map[string]any{"host": "%UPSTREAM_HOST%", "lit": "plain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	fm, err := NewJSONFormatter(st, false)
	if err != nil {
		t.Fatal(err)
	}
	out := fm.Append(nil, testStream(), testEnd)
	if !strings.HasSuffix(string(out), "}\n") {
		t.Fatalf("no newline: %q", out)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	want := map[string]any{
		"code": float64(200), "method": "GET", "missing": nil, "line": `GET /api/v1?x=1 "q"`,
		"start": "2024-03-05T07:08:09.123Z", "flags": "-", "duration": float64(57), "fixed": float64(42),
		"nested": map[string]any{"host": "10.0.0.5:9000", "lit": "plain"},
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("got  %s\nwant %s", gb, wb)
	}

	omit, err := NewJSONFormatter(st, true)
	if err != nil {
		t.Fatal(err)
	}
	if o := string(omit.Append(nil, testStream(), testEnd)); strings.Contains(o, "missing") {
		t.Errorf("omit_empty_values kept an absent field: %s", o)
	}
}

func TestJSONEscaping(t *testing.T) {
	st, _ := structpb.NewStruct(map[string]any{"ua": "%REQ(USER-AGENT)%", "k\"ey": "x"})
	fm, err := NewJSONFormatter(st, false)
	if err != nil {
		t.Fatal(err)
	}
	s := testStream()
	s.Request.Set("user-agent", "a\"b\\c\x01\xff")
	out := fm.Append(nil, s, testEnd)
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got["ua"] != "a\"b\\c\x01\ufffd" || got["k\"ey"] != "x" {
		t.Errorf("got %q", got)
	}
}

func TestFormatAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		fm   func() (*Formatter, error)
	}{
		{name: "default", fm: func() (*Formatter, error) { return NewFormatter("", false) }},
		{name: "json", fm: func() (*Formatter, error) {
			st, _ := structpb.NewStruct(map[string]any{
				"start": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
				"code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%", "duration": "%DURATION%",
				"upstream": "%UPSTREAM_HOST%", "client": "%DOWNSTREAM_REMOTE_ADDRESS%",
			})
			return NewJSONFormatter(st, false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fm, err := tc.fm()
			if err != nil {
				t.Fatal(err)
			}
			s := testStream()
			buf := make([]byte, 0, 1024)
			if n := testing.AllocsPerRun(100, func() { buf = fm.Append(buf[:0], s, testEnd) }); n != 0 {
				t.Errorf("%v allocations per line", n)
			}
		})
	}
}

func BenchmarkFormatDefault(b *testing.B) {
	fm, _ := NewFormatter("", false)
	s := testStream()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = fm.Append(buf[:0], s, testEnd)
	}
}

func BenchmarkFormatJSON(b *testing.B) {
	st, _ := structpb.NewStruct(map[string]any{
		"start": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
		"protocol": "%PROTOCOL%", "code": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%",
		"rx": "%BYTES_RECEIVED%", "tx": "%BYTES_SENT%", "duration": "%DURATION%",
		"upstream": "%UPSTREAM_HOST%", "ua": "%REQ(USER-AGENT)%", "id": "%REQ(X-REQUEST-ID)%",
	})
	fm, _ := NewJSONFormatter(st, false)
	s := testStream()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = fm.Append(buf[:0], s, testEnd)
	}
}
