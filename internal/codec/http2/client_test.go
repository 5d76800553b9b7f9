package http2

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// response gathers a client stream's response.
type response struct {
	h        Header
	body     bytes.Buffer
	trailers Header
	reset    bool
	code     ErrCode
	done     chan struct{}
}

func newResponse() *response { return &response{done: make(chan struct{})} }

func (r *response) OnHeaders(s *Stream, h *Header, end bool) {
	if h.Status < 200 {
		return
	}
	r.h = *h
	r.h.Fields = append([]hpack.HeaderField(nil), h.Fields...)
	if end {
		close(r.done)
	}
}

func (r *response) OnData(s *Stream, p []byte, end bool) {
	r.body.Write(p)
	s.Consume(len(p))
	if end {
		close(r.done)
	}
}

func (r *response) OnTrailers(s *Stream, h *Header) {
	r.trailers.Fields = append([]hpack.HeaderField(nil), h.Fields...)
	close(r.done)
}

func (r *response) OnReset(s *Stream, code ErrCode) {
	r.reset, r.code = true, code
	close(r.done)
}

// roundTrip sends one request on c and waits for its response.
func roundTrip(t testing.TB, c *Conn, method, path string, body []byte, trailers []hpack.HeaderField) *response {
	t.Helper()
	r := newResponse()
	h := &Header{Method: method, Scheme: "http", Authority: "example.com", Path: path}
	for _, f := range trailers {
		h.Add("trailer", f.Name) // net/http keeps only declared trailers
	}
	end := len(body) == 0 && len(trailers) == 0
	s, err := c.NewStream(h, end, r)
	if err != nil {
		t.Fatal(err)
	}
	if !end {
		if err := s.WriteData(body, len(trailers) == 0); err != nil {
			t.Fatal(err)
		}
		if len(trailers) > 0 {
			if err := s.WriteTrailers(&Header{Fields: trailers}); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no response")
	}
	return r
}

// netHTTPServer serves h2c with net/http's own HTTP/2 server.
func netHTTPServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dialClient(t testing.TB, addr string, cfg Config) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClientConn(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoHTTP answers with the request body, its trailers as response trailers, and a body
// of n bytes for /big?n.
var echoHTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/abort" {
		panic(http.ErrAbortHandler)
	}
	if r.URL.Path == "/big" {
		var n int
		fmt.Sscan(r.URL.RawQuery, &n)
		w.Write(bytes.Repeat([]byte("z"), n))
		return
	}
	body, _ := io.ReadAll(r.Body)
	for k := range r.Trailer {
		w.Header().Add("Trailer", k)
	}
	w.Header().Set("X-Method", r.Method)
	w.Write(body)
	for k, v := range r.Trailer {
		w.Header().Set(k, v[0])
	}
})

// TestClientAgainstNetHTTP runs the client side against net/http's HTTP/2 server.
func TestClientAgainstNetHTTP(t *testing.T) {
	addr := netHTTPServer(t, echoHTTP)
	c := dialClient(t, addr, Config{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10)
	tests := []struct {
		name         string
		method, path string
		body         []byte
		trailers     []hpack.HeaderField
		wantLen      int
		wantReset    bool
	}{
		{name: "get", method: "GET", path: "/"},
		{name: "head with length", method: "HEAD", path: "/big?1000"},
		{name: "post", method: "POST", path: "/", body: []byte("hi"), wantLen: 2},
		{name: "large upload", method: "PUT", path: "/", body: big, wantLen: len(big)},
		{name: "large download", method: "GET", path: "/big?5000000", wantLen: 5000000},
		{name: "trailers", method: "POST", path: "/", body: []byte("t"), trailers: []hpack.HeaderField{{Name: "x-sum", Value: "7"}}, wantLen: 1},
		{name: "reset by server", method: "GET", path: "/abort", wantReset: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := roundTrip(t, c, tc.method, tc.path, tc.body, tc.trailers)
			if r.reset != tc.wantReset {
				t.Fatalf("reset %v (%v), want %v", r.reset, r.code, tc.wantReset)
			}
			if tc.wantReset {
				return
			}
			if tc.method == "HEAD" && r.h.ContentLength != 1000 {
				t.Fatalf("HEAD: content-length %d, want the GET's", r.h.ContentLength)
			}
			if r.h.Status != 200 || r.body.Len() != tc.wantLen {
				t.Fatalf("status %d, %d bytes", r.h.Status, r.body.Len())
			}
			for _, f := range tc.trailers {
				if got := r.trailers.Get(f.Name); got != f.Value {
					t.Fatalf("trailer %s = %q", f.Name, got)
				}
			}
		})
	}
}

// TestClientConcurrent runs streams from many goroutines on one client connection.
func TestClientConcurrent(t *testing.T) {
	addr := netHTTPServer(t, echoHTTP)
	c := dialClient(t, addr, Config{})
	roundTrip(t, c, "GET", "/", nil, nil) // the server's SETTINGS are in
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(fmt.Sprintf("%d-%s", i, strings.Repeat("y", i*100)))
			r := roundTrip(t, c, "POST", "/", body, nil)
			if !bytes.Equal(r.body.Bytes(), body) {
				t.Errorf("stream %d: body %q", i, r.body.Bytes())
			}
		}()
	}
	wg.Wait()
}

// TestClientAgainstServer runs the codec against itself, the shape of the benchmarks.
func TestClientAgainstServer(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{})
	c := dialClient(t, ts.addr, Config{})
	r := roundTrip(t, c, "POST", "/", []byte("abc"), []hpack.HeaderField{{Name: "x-t", Value: "1"}})
	if r.body.String() != "abc" || r.trailers.Get("x-t") != "1" || r.h.Get("x-method") != "POST" {
		t.Fatalf("response %+v body %q trailers %+v", r.h, r.body.String(), r.trailers)
	}
	ts.conn(t, 0).Shutdown()
	for i := 0; i < 5000 && c.CanTakeNewStream(); i++ {
		time.Sleep(time.Millisecond)
	}
	if c.CanTakeNewStream() {
		t.Fatal("client still opens streams after GOAWAY")
	}
	if _, err := c.NewStream(&Header{Method: "GET", Scheme: "http", Path: "/"}, true, newResponse()); err == nil {
		t.Fatal("NewStream after GOAWAY succeeded")
	}
}
