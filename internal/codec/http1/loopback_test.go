package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// handler answers one request on a ServerConn; returning false ends the connection.
type handler func(t *testing.T, c *ServerConn, h *header.Map, rh *RequestHead) bool

// startServer serves handle on a loopback listener until the test ends, answering protocol
// errors with their status the way the connection manager will.
func startServer(t *testing.T, handle handler) string {
	t.Helper()
	return loopback.Serve(t, func(_ context.Context, nc net.Conn) {
		c := NewServerConn(nc, Limits{})
		defer c.Release()
		var h header.Map
		var rh RequestHead
		for {
			err := c.ReadRequest(&h, &rh)
			if err != nil {
				if s := statusOf(err); s != 0 {
					var eh header.Map
					eh.Status = s
					_ = c.WriteResponseHead(&eh, Framing{Kind: Length}, false)
					_ = c.Flush()
				}
				return
			}
			if !handle(t, c, &h, &rh) {
				return
			}
		}
	})
}

// echo answers with "METHOD path\n" plus the request body, framed like the request, and
// returns the request trailers as response trailers.
func echo(t *testing.T, c *ServerConn, h *header.Map, rh *RequestHead) bool {
	if rh.Expect100 {
		if err := c.WriteContinue(); err != nil {
			return false
		}
	}
	var body bytes.Buffer
	body.WriteString(h.Method + " " + h.Path + "\n")
	for {
		b, end, err := c.ReadBody()
		if err != nil {
			t.Errorf("server ReadBody: %v", err)
			return false
		}
		body.Write(b)
		if end {
			break
		}
	}
	var tr header.Map
	c.Trailers(&tr)
	var resp header.Map
	resp.Status = 200
	if v, ok := h.Get("x-echo"); ok {
		resp.Add("x-echo", v)
	}
	resp.Add("x-req-fields", strconv.Itoa(h.Len()))
	f := Framing{Kind: Length, Length: int64(body.Len())}
	if rh.Framing.Kind == Chunked {
		f = Framing{Kind: Chunked}
	}
	if err := c.WriteResponseHead(&resp, f, rh.KeepAlive); err != nil {
		t.Errorf("server WriteResponseHead: %v", err)
		return false
	}
	if err := c.WriteBody(body.Bytes()); err != nil {
		return false
	}
	if err := c.WriteEnd(&tr); err != nil {
		return false
	}
	return c.Flush() == nil && rh.KeepAlive
}

// response is a whole response as read by ClientConn, copied out of its buffers.
type response struct {
	status   int
	fields   string
	body     string
	trailers string
}

func readResponse(t *testing.T, c *ClientConn, method string) response {
	t.Helper()
	var h header.Map
	var rh ResponseHead
	if err := c.ReadResponse(&h, &rh, method); err != nil {
		t.Fatalf("ReadResponse: %v", err)
	}
	r := response{status: rh.Status, fields: fieldsString(&h)}
	var body strings.Builder
	for {
		b, end, err := c.ReadBody()
		if err != nil {
			t.Fatalf("ReadBody: %v", err)
		}
		body.Write(b)
		if end {
			break
		}
	}
	r.body = body.String()
	var tr header.Map
	c.Trailers(&tr)
	r.trailers = fieldsString(&tr)
	return r
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func TestLoopbackPipelined(t *testing.T) {
	addr := startServer(t, echo)
	nc := dial(t, addr)
	// Three requests in one write: the server must find each boundary in the same buffer.
	reqs := "GET /one HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n" +
		"GET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(nc, reqs); err != nil {
		t.Fatal(err)
	}
	c := NewClientConn(nc, Limits{})
	defer c.Release()
	tests := []struct {
		name string
		want response
	}{
		{name: "one", want: response{status: 200, fields: "x-req-fields: 0\ncontent-length: 9\n", body: "GET /one\n"}},
		{name: "two", want: response{status: 200, fields: "x-req-fields: 1\ncontent-length: 15\n", body: "POST /two\nhello"}},
		{name: "three", want: response{status: 200, fields: "x-req-fields: 1\ntransfer-encoding: chunked\n", body: "POST /three\nabc", trailers: "x-t: 1\n"}},
		{name: "four", want: response{status: 200, fields: "x-req-fields: 1\ncontent-length: 10\nconnection: close\n", body: "GET /four\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readResponse(t, c, "GET"); got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if c.Reusable() {
		t.Error("Reusable after Connection: close")
	}
}

// TestLoopbackIdleHoldsNoBuffer checks the memory bar: between requests a keep-alive
// connection parks in the netpoller with its read buffer back in the pool.
func TestLoopbackIdleHoldsNoBuffer(t *testing.T) {
	var parked, parkedWithBuffer atomic.Int32
	testHookParked = func(rd *reader) {
		parked.Add(1)
		if rd.bufp != nil || rd.headp != nil {
			parkedWithBuffer.Add(1)
		}
	}
	defer func() { testHookParked = nil }()
	addr := startServer(t, echo)
	nc := dial(t, addr)
	c := NewClientConn(nc, Limits{})
	defer c.Release()
	for i := range 5 {
		h := header.Map{Method: "POST", Path: "/k" + strconv.Itoa(i), Authority: "a"}
		if err := c.WriteRequestHead(&h, Framing{Kind: Length, Length: 2}); err != nil {
			t.Fatal(err)
		}
		if err := writeLast(c, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		got := readResponse(t, c, "POST")
		if want := "POST /k" + strconv.Itoa(i) + "\nhi"; got.body != want {
			t.Fatalf("body %q, want %q", got.body, want)
		}
		if !c.Reusable() {
			t.Fatalf("request %d: connection not reusable", i)
		}
	}
	if parked.Load() == 0 {
		t.Fatal("server never parked an idle connection")
	}
	if n := parkedWithBuffer.Load(); n != 0 {
		t.Fatalf("server parked %d times while holding a buffer", n)
	}
}

func TestLoopbackChunkedBothWays(t *testing.T) {
	addr := startServer(t, echo)
	c := NewClientConn(dial(t, addr), Limits{})
	defer c.Release()
	h := header.Map{Method: "PUT", Path: "/c", Authority: "a"}
	h.Add("x-echo", "yes")
	if err := c.WriteRequestHead(&h, Framing{Kind: Chunked}); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("0123456789", 3000) // past directWrite: exercises writev
	for _, part := range []string{"first,", big, ",last"} {
		if err := c.WriteBody([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	var tr header.Map
	tr.Add("x-digest", "d1")
	tr.Add("x-count", "3")
	if err := c.WriteEnd(&tr); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readResponse(t, c, "PUT")
	want := response{
		status:   200,
		fields:   "x-echo: yes\nx-req-fields: 2\ntransfer-encoding: chunked\n",
		body:     "PUT /c\nfirst," + big + ",last",
		trailers: "x-digest: d1\nx-count: 3\n",
	}
	if got != want {
		t.Fatalf("got  %.300v\nwant %.300v", got, want)
	}
	if !c.Reusable() {
		t.Fatal("not reusable after a complete chunked exchange")
	}
}

func TestLoopbackExpectContinue(t *testing.T) {
	addr := startServer(t, echo)
	nc := dial(t, addr)
	c := NewClientConn(nc, Limits{})
	defer c.Release()
	h := header.Map{Method: "POST", Path: "/upload", Authority: "a"}
	h.Add("expect", "100-continue")
	if err := c.WriteRequestHead(&h, Framing{Kind: Length, Length: 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// The body must not be needed for the server to answer 100: read it off the wire first.
	cont := make([]byte, len("HTTP/1.1 100 Continue\r\n\r\n"))
	if _, err := io.ReadFull(nc, cont); err != nil {
		t.Fatal(err)
	}
	if string(cont) != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("interim response %q", cont)
	}
	if err := writeLast(c, []byte("data")); err != nil {
		t.Fatal(err)
	}
	if got := readResponse(t, c, "POST"); got.body != "POST /upload\ndata" {
		t.Fatalf("body %q", got.body)
	}
}

// TestClientSkipsInterim checks ReadResponse passes over 100 and 103 to the final response.
func TestLoopbackClientSkipsInterim(t *testing.T) {
	addr := startServer(t, func(t *testing.T, c *ServerConn, h *header.Map, rh *RequestHead) bool {
		for _, s := range []int{100, 103} {
			var ih header.Map
			ih.Status = s
			if s == 103 {
				ih.Add("link", "</s.css>; rel=preload")
			}
			if err := c.WriteResponseHead(&ih, Framing{}, true); err != nil {
				t.Error(err)
				return false
			}
		}
		return echo(t, c, h, rh)
	})
	c := NewClientConn(dial(t, addr), Limits{})
	defer c.Release()
	h := header.Map{Method: "GET", Path: "/i", Authority: "a"}
	if err := c.WriteRequestHead(&h, Framing{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readResponse(t, c, "GET"); got.status != 200 || got.body != "GET /i\n" {
		t.Fatalf("got %+v", got)
	}
}

// TestLoopbackSlowClient dribbles a request one byte per write: every resumption point of the
// head parser and chunked decoder is crossed on a real socket.
func TestLoopbackSlowClient(t *testing.T) {
	addr := startServer(t, echo)
	nc := dial(t, addr)
	req := "\r\nPOST /slow HTTP/1.1\r\nHost: a\r\nX-Echo: dribble\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nx-t: v\r\n\r\n"
	go func() {
		for i := range len(req) {
			if _, err := nc.Write([]byte{req[i]}); err != nil {
				return
			}
		}
	}()
	c := NewClientConn(nc, Limits{})
	defer c.Release()
	got := readResponse(t, c, "POST")
	want := response{status: 200, fields: "x-echo: dribble\nx-req-fields: 2\ntransfer-encoding: chunked\n",
		body: "POST /slow\nabcdef", trailers: "x-t: v\n"}
	if got != want {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestLoopbackLargeHeadAndBody sends a head too big for the small buffer followed by a body
// bigger than any buffer: the head moves to a large buffer before parsing, and its strings must
// survive the body streaming through other buffers.
func TestLoopbackLargeHeadAndBody(t *testing.T) {
	bigValue := strings.Repeat("k", 30<<10)
	addr := startServer(t, func(t *testing.T, c *ServerConn, h *header.Map, rh *RequestHead) bool {
		n := 0
		for {
			b, end, err := c.ReadBody()
			if err != nil {
				t.Errorf("ReadBody: %v", err)
				return false
			}
			for _, x := range b {
				if x != 'b' {
					t.Errorf("body byte %q at %d", x, n)
					return false
				}
			}
			n += len(b)
			if end {
				break
			}
		}
		var resp header.Map
		resp.Status = 200
		resp.Add("x-body-len", strconv.Itoa(n))
		resp.Add("x-head-intact", strconv.FormatBool(h.Value("x-big") == bigValue && h.Path == "/big"))
		_ = c.WriteResponseHead(&resp, Framing{Kind: Length}, true)
		return c.Flush() == nil
	})
	tests := []struct {
		name    string
		framing Framing
	}{
		{name: "length", framing: Framing{Kind: Length, Length: 1 << 20}},
		{name: "chunked", framing: Framing{Kind: Chunked}},
	}
	c := NewClientConn(dial(t, addr), Limits{})
	defer c.Release()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := header.Map{Method: "POST", Path: "/big", Authority: "a"}
			h.Add("x-big", bigValue)
			if err := c.WriteRequestHead(&h, tc.framing); err != nil {
				t.Fatal(err)
			}
			chunk := bytes.Repeat([]byte("b"), 1<<16)
			for range 16 {
				if err := c.WriteBody(chunk); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.WriteEnd(nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			got := readResponse(t, c, "POST")
			if want := "x-body-len: 1048576\nx-head-intact: true\ncontent-length: 0\n"; got.fields != want {
				t.Fatalf("fields %q, want %q", got.fields, want)
			}
		})
	}
}

func TestLoopbackBadRequestGetsStatus(t *testing.T) {
	addr := startServer(t, echo)
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{name: "smuggle", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", want: "HTTP/1.1 400 Bad Request\r\n"},
		{name: "version", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", want: "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
		{name: "coding", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", want: "HTTP/1.1 501 Not Implemented\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nc := dial(t, addr)
			if _, err := io.WriteString(nc, tc.raw); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(nc).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line != tc.want {
				t.Fatalf("status line %q, want %q", line, tc.want)
			}
		})
	}
}

// TestLoopbackUpgradeHijack runs a 101 handshake and then raw bytes in both directions,
// including bytes the client sent right behind its head, which Hijack must hand over.
func TestLoopbackUpgradeHijack(t *testing.T) {
	addr := startServer(t, func(t *testing.T, c *ServerConn, h *header.Map, rh *RequestHead) bool {
		if rh.Upgrade != "echo" {
			t.Errorf("Upgrade = %q", rh.Upgrade)
			return false
		}
		var resp header.Map
		resp.Status = 101
		resp.Add("connection", "upgrade")
		resp.Add("upgrade", "echo")
		if err := c.WriteResponseHead(&resp, Framing{}, false); err != nil {
			t.Error(err)
			return false
		}
		if err := c.Flush(); err != nil {
			return false
		}
		nc, early := c.Hijack()
		if _, err := nc.Write(bytes.ToUpper(early)); err != nil {
			return false
		}
		buf := make([]byte, 64)
		for {
			n, err := nc.Read(buf)
			if n > 0 {
				if _, err := nc.Write(bytes.ToUpper(buf[:n])); err != nil {
					return false
				}
			}
			if err != nil {
				return false
			}
		}
	})
	nc := dial(t, addr)
	if _, err := io.WriteString(nc, "GET /u HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly"); err != nil {
		t.Fatal(err)
	}
	c := NewClientConn(nc, Limits{})
	var h header.Map
	var rh ResponseHead
	if err := c.ReadResponse(&h, &rh, "GET"); err != nil {
		t.Fatal(err)
	}
	if rh.Status != 101 || c.Reusable() {
		t.Fatalf("status %d, reusable %v", rh.Status, c.Reusable())
	}
	tunnel, rest := c.Hijack()
	if _, err := io.WriteString(tunnel, "late"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 9)
	n := copy(got, rest)
	if _, err := io.ReadFull(tunnel, got[n:]); err != nil {
		t.Fatal(err)
	}
	if string(got) != "EARLYLATE" {
		t.Fatalf("tunnel got %q", got)
	}
	if err := c.ReadResponse(&h, &rh, "GET"); !errors.Is(err, ErrHijacked) {
		t.Fatalf("after Hijack: %v", err)
	}
}

func TestLoopbackCleanCloseIsEOF(t *testing.T) {
	tests := []struct {
		name    string
		send    string
		wantErr error
	}{
		{name: "between requests", send: "", wantErr: io.EOF},
		{name: "inside a head", send: "GET / HT", wantErr: io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc, sc := loopback.Pair(t)
			io.WriteString(cc, tc.send)
			cc.Close()
			c := NewServerConn(sc, Limits{})
			defer c.Release()
			var h header.Map
			var rh RequestHead
			if err := c.ReadRequest(&h, &rh); err != tc.wantErr {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
