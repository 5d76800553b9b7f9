package hcm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	h2codec "github.com/nuncio-gw/nuncio/internal/codec/http2"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// TestH2Codecs runs the same HTTP/2 requests through the gateway's codec and through
// x/net's server (HTTP2.NetHTTPServer): filters must see the same requests.
func TestH2Codecs(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		header  http.Header
		trailer http.Header
		want    []string
	}{
		{name: "get", method: "GET", path: "/a?b=c", want: []string{"method=GET path=/a?b=c authority=", "body=\n"}},
		{name: "post", method: "POST", path: "/p", body: "xyz", want: []string{"body=xyz"}},
		{name: "body past the windows", method: "PUT", path: "/big", body: strings.Repeat("b", 5<<20), want: []string{"body=bbbb", "bbbb\n"}},
		{name: "cookies joined", method: "GET", path: "/c", header: http.Header{"Cookie": {"a=1", "b=2"}}, want: []string{"cookie: a=1; b=2"}},
		{name: "streamed response", method: "GET", path: "/stream", want: []string{"tail\n"}},
		{name: "trailers", method: "POST", path: "/t", body: "q", trailer: http.Header{"X-Sum": {"9"}}, want: []string{"trailer x-sum: 9", "body=q"}},
		{name: "local reply", method: "GET", path: "/d", header: http.Header{"X-Deny": {"1"}}, want: []string{""}},
	}
	for _, codec := range []struct {
		name    string
		netHTTP bool
	}{{name: "own", netHTTP: false}, {name: "nethttp", netHTTP: true}} {
		t.Run(codec.name, func(t *testing.T) {
			m := defaultHCM()
			m.HTTP2.NetHTTPServer = codec.netHTTP
			addr := testHCM(t, m, nil)
			tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
				return net.Dial(n, a)
			}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					var body io.Reader
					if tc.body != "" {
						body = strings.NewReader(tc.body)
					}
					req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, body)
					for k, v := range tc.header {
						req.Header[k] = v
					}
					if tc.trailer != nil {
						req.Trailer = tc.trailer
						req.ContentLength = -1
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.ProtoMajor != 2 {
						t.Fatalf("proto %s", resp.Proto)
					}
					for _, w := range tc.want {
						if !strings.Contains(string(b), w) {
							t.Errorf("body %q lacks %q", b, w)
						}
					}
				})
			}
		})
	}
}

// countFilter counts the requests that reach it and answers each.
type countFilter struct {
	httpfilter.PassThrough
	n *atomic.Int64
}

func (f countFilter) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }
func (f countFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return f
}
func (f countFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	f.n.Add(1)
	s.SendLocalReply(200, "", 0, "")
	return httpfilter.Stop
}

// TestH2RapidResetNotForwarded sends HEADERS+RST_STREAM pairs (CVE-2023-44487): the
// connection gets GOAWAY ENHANCE_YOUR_CALM, and streams reset in the same read as their
// HEADERS never reach the filters (so never an upstream).
func TestH2RapidResetNotForwarded(t *testing.T) {
	var n atomic.Int64
	m := defaultHCM()
	m.HTTPFilters = []model.HTTPFilter{{Name: "count", Config: countFilter{n: &n}}}
	addr := testHCM(t, m, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bw := bufio.NewWriterSize(nc, 32<<10)
	bw.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(bw, nc)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	go func() {
		for id := uint32(1); id < 4000; id += 2 {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
			fr.WriteRSTStream(id, http2.ErrCodeCancel)
			if bw.Buffered() > 16<<10 && bw.Flush() != nil {
				return
			}
		}
		bw.Flush()
	}()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Fatalf("GOAWAY %v", g.ErrCode)
			}
			break
		}
	}
	t.Logf("%d of at least 500 reset streams reached the filters", n.Load())
	if n.Load() > 50 {
		t.Errorf("%d reset streams reached the filters", n.Load())
	}
}

// sink is a client stream handler that signals the response's end.
type sink chan struct{}

func (k sink) OnHeaders(s *h2codec.Stream, h *h2codec.Header, end bool) {
	if end {
		k <- struct{}{}
	}
}
func (k sink) OnData(s *h2codec.Stream, p []byte, end bool) {
	s.Consume(len(p))
	if end {
		k <- struct{}{}
	}
}
func (k sink) OnTrailers(*h2codec.Stream, *h2codec.Header) { k <- struct{}{} }
func (k sink) OnReset(*h2codec.Stream, h2codec.ErrCode)    { k <- struct{}{} }

// BenchmarkH2Downstream is one request answered by a filter (no upstream) over h2c, through
// each downstream codec; the client is internal/codec/http2's, and allocations count both.
func BenchmarkH2Downstream(b *testing.B) {
	for _, codec := range []struct {
		name    string
		netHTTP bool
	}{{name: "own"}, {name: "nethttp", netHTTP: true}} {
		b.Run(codec.name, func(b *testing.B) {
			var n atomic.Int64
			m := defaultHCM()
			m.HTTP2.NetHTTPServer = codec.netHTTP
			m.HTTPFilters = []model.HTTPFilter{{Name: "count", Config: countFilter{n: &n}}}
			addr := testHCM(b, m, nil)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c, err := h2codec.NewClientConn(nc, h2codec.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			done := make(sink, 1)
			req := h2codec.Header{Method: "GET", Scheme: "http", Authority: "bench", Path: "/"}
			one := func() {
				h := req
				if _, err := c.NewStream(&h, true, done); err != nil {
					b.Fatal(err)
				}
				<-done
			}
			one()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				one()
			}
		})
	}
}

// TestH2WindowsBoundedByBufferLimit: Envoy's 256 MiB default windows are advertised as the
// buffer limit per stream, since the codec cannot stop reading as Envoy does.
func TestH2WindowsBoundedByBufferLimit(t *testing.T) {
	m := defaultHCM()
	m.HTTP2 = model.HTTP2Options{InitialStreamWindowSize: 256 << 20, InitialConnectionWindowSize: 256 << 20}
	addr := testHCM(t, m, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(nc, nc)
	fr.WriteSettings()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v", f)
	}
	if v, _ := sf.Value(http2.SettingInitialWindowSize); v != 1<<20 {
		t.Fatalf("SETTINGS_INITIAL_WINDOW_SIZE %d, want the 1 MiB buffer limit", v)
	}
}
