package http2

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// request is what the test handler gathered of one request.
type request struct {
	h        Header
	body     bytes.Buffer
	trailers Header
}

// testHandler answers each request once it is complete, from a goroutine of its own, with
// respond (echo by default).
type testHandler struct {
	respond func(s *Stream, r *request)
	// hold, when set, keeps requests unanswered.
	hold bool

	headers atomic.Int64
	resets  atomic.Int64
	mu      sync.Mutex
	lastReq *request
}

func (th *testHandler) OnHeaders(s *Stream, h *Header, end bool) {
	th.headers.Add(1)
	r := &request{h: *h}
	r.h.Fields = append([]hpack.HeaderField(nil), h.Fields...)
	s.Value = r
	th.mu.Lock()
	th.lastReq = r
	th.mu.Unlock()
	if end {
		th.complete(s, r)
	}
}

func (th *testHandler) OnData(s *Stream, p []byte, end bool) {
	r := s.Value.(*request)
	r.body.Write(p)
	s.Consume(len(p))
	if end {
		th.complete(s, r)
	}
}

func (th *testHandler) OnTrailers(s *Stream, h *Header) {
	r := s.Value.(*request)
	r.trailers.Fields = append([]hpack.HeaderField(nil), h.Fields...)
	th.complete(s, r)
}

func (th *testHandler) OnReset(s *Stream, code ErrCode) { th.resets.Add(1) }

func (th *testHandler) complete(s *Stream, r *request) {
	if th.hold {
		return
	}
	respond := th.respond
	if respond == nil {
		respond = echo
	}
	go respond(s, r)
}

// echo answers with the request's body (or "hello"), x-method and x-protocol fields, and
// the request's trailers echoed as response trailers.
func echo(s *Stream, r *request) {
	body := r.body.Bytes()
	if len(body) == 0 && r.h.Method != "HEAD" {
		body = []byte("hello")
	}
	h := &Header{Status: 200, Fields: []hpack.HeaderField{
		{Name: "x-method", Value: r.h.Method},
		{Name: "x-protocol", Value: r.h.Protocol},
	}}
	if len(r.trailers.Fields) == 0 && len(body) == 0 {
		s.WriteHeaders(h, true)
		return
	}
	s.WriteHeaders(h, false)
	if len(r.trailers.Fields) == 0 {
		s.WriteData(body, true)
		return
	}
	s.WriteData(body, false)
	s.WriteTrailers(&Header{Fields: r.trailers.Fields})
}

// testServer serves HTTP/2 with prior knowledge on a loopback listener.
type testServer struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []*Conn
	wg    sync.WaitGroup
	// onAccept may adjust an accepted connection (socket buffers).
	onAccept func(nc net.Conn)
	// tls, when set, terminates TLS (ALPN h2) before HTTP/2.
	tls *tls.Config
}

func newTestServer(t testing.TB, cfg Config, h Handler, opts ...func(*testServer)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), ln: ln}
	for _, o := range opts {
		o(ts)
	}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if ts.onAccept != nil {
				ts.onAccept(nc)
			}
			if ts.tls != nil {
				nc = tls.Server(nc, ts.tls)
			}
			c := NewServerConn(nc, cfg, h)
			ts.mu.Lock()
			ts.conns = append(ts.conns, c)
			ts.mu.Unlock()
			ts.wg.Add(1)
			go func() {
				defer ts.wg.Done()
				c.Serve()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		ts.mu.Lock()
		for _, c := range ts.conns {
			c.Close()
		}
		ts.mu.Unlock()
		ts.wg.Wait()
	})
	return ts
}

// conn returns the i-th accepted connection, waiting for it.
func (ts *testServer) conn(t testing.TB, i int) *Conn {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ts.mu.Lock()
		if len(ts.conns) > i {
			c := ts.conns[i]
			ts.mu.Unlock()
			return c
		}
		ts.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no connection %d", i)
	return nil
}

// h2cClient is golang.org/x/net/http2's client speaking h2c with prior knowledge.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// rawClient writes and reads raw frames.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	fr *http2.Framer
	// enc encodes header blocks; buf is its output.
	enc *hpack.Encoder
	buf bytes.Buffer
}

// dialRaw connects, sends the preface and empty SETTINGS, and skips the server's SETTINGS.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	rc := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	rc.fr.MaxHeaderListSize = 1 << 20
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.buf)
	if _, err := io.WriteString(nc, ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// block encodes a header block from name, value pairs.
func (rc *rawClient) block(kv ...string) []byte {
	rc.buf.Reset()
	for i := 0; i < len(kv); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), rc.buf.Bytes()...)
}

var getFields = []string{":method", "GET", ":scheme", "http", ":authority", "example.com", ":path", "/"}

func (rc *rawClient) headers(id uint32, end bool, kv ...string) {
	rc.t.Helper()
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: rc.block(kv...), EndStream: end, EndHeaders: true,
	}); err != nil {
		rc.t.Fatal(err)
	}
}

// wait reads frames until match returns true, failing after a few seconds or at EOF.
func (rc *rawClient) wait(what string, match func(f http2.Frame) bool) http2.Frame {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(f) {
			return f
		}
	}
}

func (rc *rawClient) waitGoAway(code ErrCode) *http2.GoAwayFrame {
	rc.t.Helper()
	f := rc.wait("GOAWAY "+code.String(), func(f http2.Frame) bool {
		_, ok := f.(*http2.GoAwayFrame)
		return ok
	}).(*http2.GoAwayFrame)
	if f.ErrCode != code {
		rc.t.Fatalf("GOAWAY %v, want %v", f.ErrCode, code)
	}
	return f
}

func (rc *rawClient) waitRST(id uint32, code ErrCode) {
	rc.t.Helper()
	f := rc.wait("RST_STREAM", func(f http2.Frame) bool {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			rc.t.Fatalf("GOAWAY %v (%q) instead of RST_STREAM", g.ErrCode, g.DebugData())
		}
		r, ok := f.(*http2.RSTStreamFrame)
		return ok && r.StreamID == id
	}).(*http2.RSTStreamFrame)
	if f.ErrCode != code {
		rc.t.Fatalf("RST_STREAM %v, want %v", f.ErrCode, code)
	}
}

// waitResponse returns the status of the response on stream id.
func (rc *rawClient) waitResponse(id uint32) string {
	rc.t.Helper()
	f := rc.wait("response headers", func(f http2.Frame) bool {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			rc.t.Fatalf("GOAWAY %v instead of a response", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				rc.t.Fatalf("RST_STREAM %v instead of a response", f.ErrCode)
			}
		case *http2.MetaHeadersFrame:
			return f.StreamID == id
		}
		return false
	}).(*http2.MetaHeadersFrame)
	return f.PseudoValue("status")
}

// waitClosed reads until the connection ends.
func (rc *rawClient) waitClosed() {
	rc.t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, rc.nc)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		rc.t.Fatalf("waiting for close: %v", err)
	}
}
