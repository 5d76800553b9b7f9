package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// echoServer answers with the request's method and body, a trailer when the request had
// one, and the header "x-len" with the body length it received. It speaks HTTP/1.1 and h2c.
func echoServer(t *testing.T) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		if r.URL.Path == "/empty" {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("x-len", strconv.Itoa(len(body)))
		w.Header().Set("x-query", r.URL.RawQuery)
		if v := r.Trailer.Get("x-req-trailer"); v != "" {
			w.Header().Set("Trailer", "x-resp-trailer")
			defer func() { w.Header().Set("x-resp-trailer", v) }()
		}
		io.WriteString(w, r.Method+" "+string(body))
	})
	return loopback.H2C(t, h)
}

func TestExchange(t *testing.T) {
	addr := echoServer(t)
	for _, proto := range []Protocol{HTTP1, HTTP2} {
		p := NewPool(addr, PoolOptions{Protocol: proto})
		t.Cleanup(p.Close)
		tests := []struct {
			name     string
			method   string
			path     string
			body     string
			stream   bool // write the body piece by piece, beside the response read
			trailer  string
			wantBody string
			wantEnd  bool
		}{
			{name: "get", method: "GET", path: "/a?q=1", wantBody: "GET "},
			{name: "no content", method: "GET", path: "/empty", wantEnd: true},
			{name: "whole body", method: "POST", path: "/", body: "hello", wantBody: "POST hello"},
			{name: "whole body with trailers", method: "POST", path: "/", body: "hello", trailer: "t1", wantBody: "POST hello"},
			{name: "empty post", method: "POST", path: "/", wantBody: "POST "},
			{name: "streamed body", method: "PUT", path: "/", body: "a b c", stream: true, wantBody: "PUT a b c"},
			{name: "streamed body with trailers", method: "POST", path: "/", body: "x y", stream: true, trailer: "t2", wantBody: "POST x y"},
		}
		for _, tc := range tests {
			t.Run(proto.String()+"/"+tc.name, func(t *testing.T) {
				x := NewExchange(proto)
				var h header.Map
				h.Method, h.Path, h.Authority = tc.method, tc.path, "example.test"
				var trailers *header.Map
				if tc.trailer != "" {
					trailers = &header.Map{}
					trailers.Add("x-req-trailer", tc.trailer)
					// Go's HTTP/2 server keeps only the trailers a request declares.
					h.Add("trailer", "x-req-trailer")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				x.Prepare(&h, !tc.stream && tc.body == "" && trailers == nil)
				if err := x.Connect(ctx, p, time.Now().Add(5*time.Second)); err != nil {
					t.Fatal(err)
				}
				wrote := make(chan error, 1)
				if tc.stream {
					if err := x.WriteHeaders(&h, false); err != nil {
						t.Fatal(err)
					}
					go func() {
						for _, piece := range strings.SplitAfter(tc.body, " ") {
							if err := x.WriteBody([]byte(piece)); err != nil {
								wrote <- err
								return
							}
						}
						wrote <- x.WriteEnd(trailers)
					}()
				} else {
					wrote <- x.WriteRequest(&h, []byte(tc.body), trailers)
				}
				var resp header.Map
				end, err := x.ReadResponse(&resp)
				if err != nil {
					t.Fatal(err)
				}
				if err := <-wrote; err != nil {
					t.Fatal(err)
				}
				if end != tc.wantEnd {
					t.Fatalf("end = %v, want %v", end, tc.wantEnd)
				}
				var got []byte
				for !end {
					var chunk []byte
					if chunk, end, err = x.ReadBody(); err != nil {
						t.Fatal(err)
					}
					got = append(got, chunk...)
				}
				if string(got) != tc.wantBody {
					t.Errorf("body = %q, want %q", got, tc.wantBody)
				}
				if !tc.wantEnd {
					if v := resp.Value("x-len"); v != strconv.Itoa(len(tc.body)) {
						t.Errorf("x-len = %q, want %d", v, len(tc.body))
					}
				}
				if q, _, _ := strings.Cut(tc.path, "?"); q != tc.path && resp.Value("x-query") != "q=1" {
					t.Errorf("x-query = %q", resp.Value("x-query"))
				}
				var tr header.Map
				x.Trailers(&tr)
				if tr.Value("x-resp-trailer") != tc.trailer {
					t.Errorf("trailer = %q, want %q", tr.Value("x-resp-trailer"), tc.trailer)
				}
				x.Close(true)
			})
		}
	}
}

// TestH1ExchangeReplayable shows the one request H1 may send again: a bodiless GET on a
// reused connection the upstream closed unanswered.
func TestH1ExchangeReplayable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if line == "\r\n" {
					break
				}
			}
			if i == 0 {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		}
		// The second request is read and left unanswered: the connection closes.
	}()
	p := NewPool(ln.Addr().String(), PoolOptions{})
	defer p.Close()
	var x H1
	var h header.Map
	h.Method, h.Path, h.Authority = "GET", "/", "a"
	var resp header.Map
	for i := 0; i < 2; i++ {
		x.Prepare(&h, true)
		if err := x.Connect(context.Background(), p, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := x.WriteHeaders(&h, true); err != nil {
			t.Fatal(err)
		}
		_, err := x.ReadResponse(&resp)
		if i == 0 {
			if err != nil || x.Reused() {
				t.Fatalf("first: err %v, reused %v", err, x.Reused())
			}
			x.Close(true)
			continue
		}
		if !x.Reused() || !x.Replayable(err) {
			t.Fatalf("second: err %v, reused %v, replayable %v", err, x.Reused(), x.Replayable(err))
		}
		x.Close(false)
	}
	h.Method = "POST"
	x.Prepare(&h, true)
	x.reused = true
	if x.Replayable(io.EOF) {
		t.Error("a POST is replayable")
	}
}

// fastServer answers every request on a connection with the same small response.
func fastServer(t testing.TB) string {
	return loopback.Fixed(t, []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
}

func h1Once(tb testing.TB, x *H1, p *Pool, h, resp *header.Map) {
	x.Prepare(h, true)
	if err := x.Connect(context.Background(), p, time.Time{}); err != nil {
		tb.Fatal(err)
	}
	if err := x.WriteHeaders(h, true); err != nil {
		tb.Fatal(err)
	}
	end, err := x.ReadResponse(resp)
	for err == nil && !end {
		_, end, err = x.ReadBody()
	}
	if err != nil {
		tb.Fatal(err)
	}
	x.Close(true)
}

// TestH1ExchangeAllocs holds H1 to what the router promises: an exchange on a reused
// connection allocates nothing.
func TestH1ExchangeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := NewPool(fastServer(t), PoolOptions{})
	defer p.Close()
	var x H1
	var h, resp header.Map
	h.Method, h.Path, h.Authority = "GET", "/", "a"
	h1Once(t, &x, p, &h, &resp)
	if n := testing.AllocsPerRun(100, func() { h1Once(t, &x, p, &h, &resp) }); n != 0 {
		t.Errorf("allocs per exchange = %v, want 0", n)
	}
}

func BenchmarkH1Exchange(b *testing.B) {
	p := NewPool(fastServer(b), PoolOptions{})
	defer p.Close()
	var x H1
	var h, resp header.Map
	h.Method, h.Path, h.Authority = "GET", "/", "a"
	b.ReportAllocs()
	for b.Loop() {
		h1Once(b, &x, p, &h, &resp)
	}
}
