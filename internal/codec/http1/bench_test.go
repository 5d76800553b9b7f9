package http1

import (
	"io"
	"net"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// typicalGET is a browser-like request with eight fields besides Host.
const typicalGET = "GET /api/v1/items?page=2&sort=desc HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: session=4f1c2a9e8b7d6c5e; theme=dark\r\n" +
	"Referer: https://app.example.com/dashboard\r\n" +
	"X-Request-Id: 7d1f6a2e-3b4c-4d5e-8f90-a1b2c3d4e5f6\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

const smallPOST = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\n"

const okResponse = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nserver: nuncio\r\ncontent-length: 13\r\n\r\nHello, world!"

var responseBody = []byte("Hello, world!")

func responseMap() *header.Map {
	h := &header.Map{Status: 200}
	h.Add("content-type", "text/plain")
	h.Add("server", "nuncio")
	return h
}

// serveOne reads one request with its body and writes the fixed response.
func serveOne(c *ServerConn, h, resp *header.Map, rh *RequestHead) error {
	if err := c.ReadRequest(h, rh); err != nil {
		return err
	}
	for {
		_, end, err := c.ReadBody()
		if err != nil {
			return err
		}
		if end {
			break
		}
	}
	if err := c.WriteResponseHead(resp, Framing{Kind: Length, Length: int64(len(responseBody))}, true); err != nil {
		return err
	}
	return writeLast(c, responseBody)
}

func BenchmarkParseRequestHead(b *testing.B) {
	buf := []byte(typicalGET)
	var h header.Map
	var rh RequestHead
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequestHead(buf, &h, &rh, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteResponseHead(b *testing.B) {
	c := NewServerConn(&loopConn{msg: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}, Limits{})
	var req header.Map
	var rh RequestHead
	if err := c.ReadRequest(&req, &rh); err != nil {
		b.Fatal(err)
	}
	h := responseMap()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.WriteResponseHead(h, Framing{Kind: Length, Length: int64(len(responseBody))}, true); err != nil {
			b.Fatal(err)
		}
		if err := c.WriteBody(responseBody); err != nil {
			b.Fatal(err)
		}
		if err := c.WriteEnd(nil); err != nil {
			b.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServerExchange is the codec's whole per-request work with I/O stubbed out: read a
// request (head and body), write a response.
func BenchmarkServerExchange(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  string
	}{
		{name: "GET", req: typicalGET},
		{name: "chunked POST", req: smallPOST},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := NewServerConn(&loopConn{msg: []byte(bc.req)}, Limits{})
			defer c.Release()
			var h header.Map
			var rh RequestHead
			resp := responseMap()
			b.SetBytes(int64(len(bc.req)))
			b.ReportAllocs()
			for b.Loop() {
				if err := serveOne(c, &h, resp, &rh); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchmarkTransport measures a full request/response over a real connection pair, one
// exchange in flight at a time, as a keep-alive client would drive it.
func benchmarkTransport(b *testing.B, client, server net.Conn) {
	c := NewServerConn(server, Limits{})
	done := make(chan error, 1)
	go func() {
		var h header.Map
		var rh RequestHead
		resp := responseMap()
		for {
			if err := serveOne(c, &h, resp, &rh); err != nil {
				c.Release()
				done <- err
				return
			}
		}
	}()
	req := []byte(typicalGET)
	got := make([]byte, len(okResponse))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, got); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if string(got) != okResponse {
		b.Fatalf("response %q", got)
	}
	client.Close()
	<-done
}

func BenchmarkRoundTripPipe(b *testing.B) {
	client, server := net.Pipe()
	defer server.Close()
	benchmarkTransport(b, client, server)
}

func BenchmarkRoundTripLoopback(b *testing.B) {
	client, server := loopback.Pair(b)
	benchmarkTransport(b, client, server)
}

func BenchmarkClientExchange(b *testing.B) {
	c := NewClientConn(&loopConn{msg: []byte(okResponse)}, Limits{})
	defer c.Release()
	req := header.Map{Method: "GET", Path: "/api/v1/items", Authority: "api.example.com"}
	req.Add("accept", "application/json")
	req.Add("x-request-id", "7d1f6a2e-3b4c-4d5e-8f90-a1b2c3d4e5f6")
	var h header.Map
	var rh ResponseHead
	b.ReportAllocs()
	for b.Loop() {
		if err := clientOne(c, &req, &h, &rh); err != nil {
			b.Fatal(err)
		}
	}
}

func clientOne(c *ClientConn, req, h *header.Map, rh *ResponseHead) error {
	if err := c.WriteRequestHead(req, Framing{}); err != nil {
		return err
	}
	if err := c.WriteEnd(nil); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if err := c.ReadResponse(h, rh, req.Method); err != nil {
		return err
	}
	for {
		_, end, err := c.ReadBody()
		if err != nil {
			return err
		}
		if end {
			return nil
		}
	}
}

// TestZeroAllocs holds the hot paths to the design's bar: no heap allocation per request in
// steady state.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var h header.Map
	var rh RequestHead
	var resph ResponseHead
	resp := responseMap()
	getBuf := []byte(typicalGET)
	server := NewServerConn(&loopConn{msg: []byte(typicalGET)}, Limits{})
	chunkedServer := NewServerConn(&loopConn{msg: []byte(smallPOST)}, Limits{})
	writeOnly := NewServerConn(&loopConn{msg: []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")}, Limits{})
	if err := writeOnly.ReadRequest(&h, &rh); err != nil {
		t.Fatal(err)
	}
	client := NewClientConn(&loopConn{msg: []byte(okResponse)}, Limits{})
	req := header.Map{Method: "GET", Path: "/x", Authority: "a"}
	req.Add("accept", "*/*")

	tests := []struct {
		name string
		run  func() error
	}{
		{name: "ParseRequestHead", run: func() error {
			_, err := ParseRequestHead(getBuf, &h, &rh, Limits{})
			return err
		}},
		{name: "write response", run: func() error {
			if err := writeOnly.WriteResponseHead(resp, Framing{Kind: Chunked}, true); err != nil {
				return err
			}
			return writeLast(writeOnly, responseBody)
		}},
		{name: "server exchange GET", run: func() error { return serveOne(server, &h, resp, &rh) }},
		{name: "server exchange chunked POST", run: func() error { return serveOne(chunkedServer, &h, resp, &rh) }},
		{name: "client exchange", run: func() error { return clientOne(client, &req, &h, &resph) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(200, func() {
				if e := tc.run(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if allocs != 0 {
				t.Fatalf("%v allocations per run, want 0", allocs)
			}
		})
	}
}
