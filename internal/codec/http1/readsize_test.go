package http1

import (
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

type countingConn struct {
	memConn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.memConn.Read(p)
}

// Once a connection's responses outgrow the small buffer, the next ones are read into a
// large one: a 16 KiB response then costs one read after the first byte, not three; a
// small response returns the connection to small buffers.
func TestClientReadsLargeResponsesWhole(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nContent-Length: 16384\r\n\r\n" + strings.Repeat("x", 16384)
	small := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	conn := &countingConn{}
	c := NewClientConn(conn, Limits{})
	defer c.Release()
	tests := []struct {
		name      string
		resp      string
		bodyLen   int
		wantLarge bool
	}{
		{name: "first large", resp: big, bodyLen: 16384, wantLarge: false},
		{name: "second large", resp: big, bodyLen: 16384, wantLarge: true},
		{name: "first small", resp: small, bodyLen: 2, wantLarge: true},
		{name: "second small", resp: small, bodyLen: 2, wantLarge: false},
	}
	for _, tc := range tests {
		conn.in = []byte(tc.resp)
		h := header.Map{Method: "GET", Path: "/", Authority: "a"}
		if err := c.WriteRequestHead(&h, Framing{}); err != nil {
			t.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		before := conn.reads
		var resp header.Map
		var rh ResponseHead
		if err := c.ReadResponse(&resp, &rh, "GET"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := len(c.rd.buf) == c.rd.large; got != tc.wantLarge {
			t.Errorf("%s: read into a large buffer %v, want %v", tc.name, got, tc.wantLarge)
		}
		n := 0
		for {
			b, end, err := c.ReadBody()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			n += len(b)
			if end {
				break
			}
		}
		if n != tc.bodyLen {
			t.Fatalf("%s: body %d bytes, want %d", tc.name, n, tc.bodyLen)
		}
		if tc.wantLarge && tc.bodyLen > smallBufSize && conn.reads-before > 2 {
			t.Errorf("%s: %d reads for one response, want the first byte and the rest", tc.name, conn.reads-before)
		}
	}
}
