package hcm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// echoFilter is a terminal filter that answers with a description of the request it got,
// so tests see exactly what the connection manager hands to filters.
type echoFilter struct {
	httpfilter.PassThrough
	body bytes.Buffer
}

func (f *echoFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if end {
		f.respond(s)
		return httpfilter.Stop
	}
	return httpfilter.Continue
}

func (f *echoFilter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	f.body.Write(chunk)
	if end {
		f.respond(s)
	}
	return httpfilter.Continue
}

func (f *echoFilter) OnRequestTrailers(s *httpfilter.Stream, t *header.Map) httpfilter.Status {
	f.respond(s)
	return httpfilter.Stop
}

func (f *echoFilter) respond(s *httpfilter.Stream) {
	var b strings.Builder
	fmt.Fprintf(&b, "method=%s path=%s authority=%s scheme=%s remote=%s\n", s.Request.Method, s.Request.Path, s.Request.Authority, s.Request.Scheme, s.Downstream.RemoteAddr.Addr())
	var lines []string
	for _, fl := range s.Request.Fields() {
		lines = append(lines, fl.Name+": "+fl.Value)
	}
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	for _, fl := range s.RequestTrailers.Fields() {
		b.WriteString("trailer " + fl.Name + ": " + fl.Value + "\n")
	}
	fmt.Fprintf(&b, "body=%s\n", f.body.String())
	s.Response.Status = 200
	s.Response.Add("content-type", "text/plain")
	if s.Request.Path == "/stream" {
		// No length: the codec must choose chunked (or close for HTTP/1.0).
		s.EncodeHeaders(false)
		s.EncodeBody([]byte(b.String()), false)
		s.EncodeBody([]byte("tail\n"), true)
		return
	}
	s.Response.Add("content-length", fmt.Sprint(b.Len()))
	s.EncodeHeaders(false)
	s.EncodeBody([]byte(b.String()), true)
}

type echoConfig struct{}

func (echoConfig) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody | httpfilter.PhaseRequestTrailers
}

func (echoConfig) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return &echoFilter{}
}

// bufferFilter asks for the whole body and reports its length in a request header.
type bufferFilter struct{ httpfilter.PassThrough }

func (bufferFilter) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody
}

func (bufferFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return bufferFilter{}
}

func (bufferFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if h.Has("x-buffer") {
		return httpfilter.StopAndBuffer
	}
	return httpfilter.Continue
}

func (bufferFilter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if s.Request.Has("x-buffer") {
		if !end {
			panic("buffered body delivered in pieces")
		}
		s.Request.Set("x-buffered-len", fmt.Sprint(len(chunk)))
	}
	return httpfilter.Continue
}

// denyFilter answers 403 locally when the request carries x-deny.
type denyFilter struct{ httpfilter.PassThrough }

func (denyFilter) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

func (denyFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return denyFilter{}
}

func (denyFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if h.Has("x-deny") {
		s.SendLocalReply(403, "denied", 0, "test_denied")
		return httpfilter.Stop
	}
	return httpfilter.Continue
}

// upperFilter rewrites response bodies to upper case; it drops the length since it could
// change it.
type upperFilter struct{ httpfilter.PassThrough }

func (upperFilter) Phases() httpfilter.Phases {
	return httpfilter.PhaseResponseHeaders | httpfilter.PhaseResponseBody
}

func (upperFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return upperFilter{}
}

func (upperFilter) OnResponseHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if s.Request.Has("x-upper") {
		h.Del("content-length")
	}
	return httpfilter.Continue
}

func (upperFilter) OnResponseBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if s.Request.Has("x-upper") {
		copy(chunk, bytes.ToUpper(chunk))
	}
	return httpfilter.Continue
}

var _ = proto.Clone

// testHCM serves cfg on a loopback listener and returns its address.
func testHCM(t testing.TB, m *model.HTTPConnectionManager, tlsConf *tls.Config) string {
	t.Helper()
	if m.RouteConfig == nil {
		m.RouteConfig = &model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{
			Name: "all", Domains: []string{"*"},
			Routes: []*model.Route{{Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"}, Route: &model.RouteAction{Cluster: "none"}}},
		}}}
	}
	if m.HTTPFilters == nil {
		m.HTTPFilters = []model.HTTPFilter{
			{Name: "deny", Config: denyFilter{}},
			{Name: "buffer", Config: bufferFilter{}},
			{Name: "upper", Config: upperFilter{}},
			{Name: "echo", Config: echoConfig{}},
		}
	}
	rt, err := route.Compile(m.RouteConfig, cluster.NewRef)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	cfg, err := New(m, slot, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return loopback.Serve(t, func(ctx context.Context, c net.Conn) {
		info := listener.ConnInfo{
			RemoteAddr: netip.MustParseAddrPort(c.RemoteAddr().String()),
			LocalAddr:  netip.MustParseAddrPort(c.LocalAddr().String()),
		}
		if tlsConf != nil {
			tc := tls.Server(c, tlsConf)
			if tc.Handshake() != nil {
				return
			}
			st := tc.ConnectionState()
			info.TLS, info.ALPN = &st, st.NegotiatedProtocol
			c = tc
		}
		cfg.ServeConn(ctx, c, info)
		c.Close()
	})
}

func defaultHCM() *model.HTTPConnectionManager {
	return &model.HTTPConnectionManager{
		StatPrefix: "test", GenerateRequestID: true, MaxRequestHeadersBytes: 60 << 10, MaxHeadersCount: 100,
		StreamIdleTimeout: 5 * time.Second, NormalizePath: true, MergeSlashes: true,
	}
}

// exchange sends raw and reads one response.
func exchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func TestRequestHandling(t *testing.T) {
	edge := defaultHCM()
	edge.UseRemoteAddress = true
	trusted := defaultHCM()
	trusted.XFFNumTrustedHops = 1
	underscores := defaultHCM()
	underscores.UnderscoresAction = model.UnderscoresRejectRequest
	dropUnderscores := defaultHCM()
	dropUnderscores.UnderscoresAction = model.UnderscoresDropHeader

	tests := []struct {
		name       string
		hcm        *model.HTTPConnectionManager
		raw        string
		wantStatus int
		want       []string // lines the echo must contain
		notWant    []string
	}{
		{
			name: "edge appends peer to xff and sets proto", hcm: edge,
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n",
			wantStatus: 200, want: []string{"x-forwarded-for: 198.51.100.1,127.0.0.1", "x-forwarded-proto: http", "remote=127.0.0.1"},
		},
		{
			name: "not edge trusts the last xff hop", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n\r\n",
			wantStatus: 200, want: []string{"remote=203.0.113.7", "x-forwarded-for: 198.51.100.1, 203.0.113.7"},
		},
		{
			name: "one trusted hop skips the rightmost entry", hcm: trusted,
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n\r\n",
			wantStatus: 200, want: []string{"remote=198.51.100.1"},
		},
		{
			name: "hop-by-hop headers removed", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: 5\r\nTE: gzip\r\nX-Keep: 1\r\n\r\n",
			wantStatus: 200, want: []string{"x-keep: 1"}, notWant: []string{"x-private", "keep-alive", "connection", "te:"},
		},
		{
			name: "te trailers survives", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n",
			wantStatus: 200, want: []string{"te: trailers"},
		},
		{
			name: "request id generated", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
			wantStatus: 200, want: []string{"x-request-id: "},
		},
		{
			name: "internal request id kept", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\n\r\n",
			wantStatus: 200, want: []string{"x-request-id: abc"},
		},
		{
			name: "edge replaces external request id", hcm: edge,
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\n\r\n",
			wantStatus: 200, notWant: []string{"x-request-id: abc"},
		},
		{
			name: "path normalised", hcm: defaultHCM(),
			raw:        "GET /a/./b/../c//d/%7Euser%2f?q=/../x HTTP/1.1\r\nHost: h\r\n\r\n",
			wantStatus: 200, want: []string{"path=/a/c/d/~user%2F?q=/../x"},
		},
		{
			name: "dot segments cannot escape root", hcm: defaultHCM(),
			raw:        "GET /../../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n",
			wantStatus: 200, want: []string{"path=/etc/passwd"},
		},
		{
			name: "bad percent encoding refused", hcm: defaultHCM(),
			raw:        "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n",
			wantStatus: 400,
		},
		{
			name: "underscore header rejected", hcm: underscores,
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX_Bad: 1\r\n\r\n",
			wantStatus: 400,
		},
		{
			name: "underscore header dropped", hcm: dropUnderscores,
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX_Bad: 1\r\nX-Good: 1\r\n\r\n",
			wantStatus: 200, want: []string{"x-good: 1"}, notWant: []string{"x_bad"},
		},
		{
			name: "buffering filter sees the whole chunked body", hcm: defaultHCM(),
			raw:        "POST /a HTTP/1.1\r\nHost: h\r\nX-Buffer: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
			wantStatus: 200, want: []string{"x-buffered-len: 7", "body=abcdefg"},
		},
		{
			name: "request trailers reach filters", hcm: defaultHCM(),
			raw:        "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9\r\n\r\n",
			wantStatus: 200, want: []string{"trailer x-sum: 9", "body=abc"},
		},
		{
			name: "local reply from a filter", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Deny: 1\r\n\r\n",
			wantStatus: 403,
		},
		{
			name: "response body filter", hcm: defaultHCM(),
			raw:        "GET /a HTTP/1.1\r\nHost: h\r\nX-Upper: 1\r\n\r\n",
			wantStatus: 200, want: []string{"METHOD=GET"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := testHCM(t, tc.hcm, nil)
			resp, body := exchange(t, addr, tc.raw)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d\n%s", resp.StatusCode, tc.wantStatus, body)
			}
			if resp.Header.Get("Server") != DefaultServerName {
				t.Errorf("server header %q", resp.Header.Get("Server"))
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("echo lacks %q:\n%s", w, body)
				}
			}
			for _, nw := range tc.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("echo has %q:\n%s", nw, body)
				}
			}
		})
	}
}

func TestResponseFraming(t *testing.T) {
	addr := testHCM(t, defaultHCM(), nil)
	tests := []struct {
		name          string
		raw           string
		wantChunked   bool
		wantClose     bool
		wantBodyEmpty bool
	}{
		{name: "http/1.1 stream is chunked", raw: "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n", wantChunked: true},
		{name: "http/1.0 stream is close delimited", raw: "GET /stream HTTP/1.0\r\nHost: h\r\n\r\n", wantClose: true},
		{name: "head has no body", raw: "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n", wantBodyEmpty: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.raw)
			req, _ := http.NewRequest(strings.Fields(tc.raw)[0], "/", nil)
			resp, err := http.ReadResponse(bufio.NewReader(c), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantChunked && (len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked") {
				t.Errorf("transfer-encoding %v, want chunked", resp.TransferEncoding)
			}
			if tc.wantClose && !resp.Close {
				t.Errorf("want a close-delimited response")
			}
			if tc.wantBodyEmpty != (len(b) == 0) {
				t.Errorf("body %q", b)
			}
			if !tc.wantBodyEmpty && !strings.HasSuffix(string(b), "tail\n") && strings.Contains(tc.raw, "stream") {
				t.Errorf("streamed body incomplete: %q", b)
			}
		})
	}
}

func TestKeepAliveAndPipelining(t *testing.T) {
	addr := testHCM(t, defaultHCM(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"path=/1", "path=/2", "path=/3"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), want) {
			t.Errorf("got %q, want %q", b, want)
		}
	}
}

func TestEarlyResponseDrainsSmallBody(t *testing.T) {
	addr := testHCM(t, defaultHCM(), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The first request is refused before its body is read; the connection must stay usable.
	io.WriteString(c, "POST /1 HTTP/1.1\r\nHost: h\r\nX-Deny: 1\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("first: %v %v", resp, err)
	}
	io.ReadAll(resp.Body)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "path=/2") {
		t.Errorf("second request answered %q", b)
	}
}

func TestRequestHeaderTimeout(t *testing.T) {
	m := defaultHCM()
	m.IdleTimeout = 300 * time.Millisecond
	addr := testHCM(t, m, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost:")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 408 {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
}

func TestH2C(t *testing.T) {
	addr := testHCM(t, defaultHCM(), nil)
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		return net.Dial(n, a)
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct {
		name       string
		method     string
		body       string
		header     map[string]string
		wantStatus int
		want       string
	}{
		{name: "get", method: "GET", wantStatus: 200, want: "method=GET"},
		{name: "post body", method: "POST", body: "xyz", wantStatus: 200, want: "body=xyz"},
		{name: "buffered body", method: "POST", body: "0123456789", header: map[string]string{"X-Buffer": "1"}, wantStatus: 200, want: "x-buffered-len: 10"},
		{name: "local reply", method: "GET", header: map[string]string{"X-Deny": "1"}, wantStatus: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, "http://"+addr+"/h2", body)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.ProtoMajor != 2 {
				t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
			}
			if !strings.Contains(string(b), tc.want) {
				t.Errorf("body %q lacks %q", b, tc.want)
			}
		})
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		dots  bool
		merge bool
		want  string
		ok    bool
	}{
		{name: "plain", in: "/a/b", dots: true, want: "/a/b", ok: true},
		{name: "dot", in: "/a/./b", dots: true, want: "/a/b", ok: true},
		{name: "dotdot", in: "/a/b/../c", dots: true, want: "/a/c", ok: true},
		{name: "trailing dotdot", in: "/a/b/..", dots: true, want: "/a/", ok: true},
		{name: "above root", in: "/../a", dots: true, want: "/a", ok: true},
		{name: "encoded unreserved", in: "/%61%2D", dots: true, want: "/a-", ok: true},
		{name: "encoded reserved uppercased", in: "/a%2fb", dots: true, want: "/a%2Fb", ok: true},
		{name: "bad escape", in: "/a%2", dots: true, ok: false},
		{name: "merge", in: "//a///b", merge: true, want: "/a/b", ok: true},
		{name: "query untouched", in: "/a/../b?x=/../y", dots: true, want: "/b?x=/../y", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := normalizePath(nil, tc.in, tc.dots, tc.merge)
			if ok != tc.ok || (ok && string(got) != tc.want) {
				t.Errorf("normalizePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/b", "/../..", "/%2e%2e/x", "//a//b/", "/a?b/../c", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if !strings.HasPrefix(in, "/") {
			return
		}
		out, ok := normalizePath(nil, in, true, true)
		if !ok {
			return
		}
		p := string(out)
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("normalised %q to %q: not absolute", in, out)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("normalised %q to %q: dot segment left", in, out)
			}
		}
		if strings.Contains(p, "//") {
			t.Fatalf("normalised %q to %q: slashes not merged", in, out)
		}
		again, _ := normalizePath(nil, string(out), true, true)
		if string(again) != string(out) {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
	})
}

// TestDrainClosesIdleConnections checks that a keep-alive connection waiting for its next
// request is closed as soon as the listener drains, not when the drain time runs out.
func TestDrainClosesIdleConnections(t *testing.T) {
	rt, err := route.Compile(&model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*model.Route{{Match: model.RouteMatch{Path: "/"}, Route: &model.RouteAction{Cluster: "none"}}},
	}}}, cluster.NewRef)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	m := defaultHCM()
	m.HTTPFilters = []model.HTTPFilter{{Name: "echo", Config: echoConfig{}}}
	cfg, err := New(m, slot, Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	defer client.Close()
	drainCtx, drain := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		cfg.ServeConn(context.Background(), server, listener.ConnInfo{DrainContext: drainCtx})
		server.Close()
		close(done)
	}()
	client.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(client, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	drain()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection still open after the drain started")
	}
}

func TestBufferLimit(t *testing.T) {
	m := defaultHCM()
	rt, err := route.Compile(&model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*model.Route{{Match: model.RouteMatch{Path: "/"}, Route: &model.RouteAction{Cluster: "none"}}},
	}}}, cluster.NewRef)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	m.HTTPFilters = []model.HTTPFilter{{Name: "buffer", Config: bufferFilter{}}, {Name: "echo", Config: echoConfig{}}}
	cfg, err := New(m, slot, Options{BufferLimit: 1024})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		size       int
		wantStatus int
	}{
		{name: "under the limit", size: 1000, wantStatus: 200},
		{name: "over the limit", size: 2000, wantStatus: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				cfg.ServeConn(context.Background(), server, listener.ConnInfo{})
				server.Close()
			}()
			client.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(client, fmt.Sprintf("POST /a HTTP/1.1\r\nHost: h\r\nX-Buffer: 1\r\nContent-Length: %d\r\n\r\n%s", tc.size, strings.Repeat("x", tc.size)))
			resp, err := http.ReadResponse(bufio.NewReader(client), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
}

func TestEqualFoldTrimIsASCII(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		token string
		want  bool
	}{
		{name: "case and whitespace", s: " Keep-Alive\t", token: "keep-alive", want: true},
		{name: "unicode long s is not s", s: "trailerſ", token: "trailers", want: false},
		{name: "kelvin sign is not k", s: "\u212aeep-alive", token: "keep-alive", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := equalFoldTrim(tc.s, tc.token); got != tc.want {
				t.Errorf("equalFoldTrim(%q, %q) = %v, want %v", tc.s, tc.token, got, tc.want)
			}
		})
	}
}
