package http1

import (
	"io"
	"sync/atomic"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

// Wait parks without a buffer, returns once a request's first bytes arrive (ReadRequest
// then reads the head), returns at once for pipelined bytes, and reports a clean close.
func TestServerConnWait(t *testing.T) {
	var parked, parkedWithBuffer atomic.Int32
	testHookParked = func(rd *reader) {
		parked.Add(1)
		if rd.bufp != nil || rd.headp != nil {
			parkedWithBuffer.Add(1)
		}
	}
	defer func() { testHookParked = nil }()
	cc, sc := loopback.Pair(t)
	c := NewServerConn(sc, Limits{})
	defer c.Release()

	go io.WriteString(cc, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, path := range []string{"/a", "/b"} {
		if err := c.Wait(); err != nil {
			t.Fatalf("Wait before %s: %v", path, err)
		}
		var h header.Map
		var rh RequestHead
		if err := c.ReadRequest(&h, &rh); err != nil || h.Path != path {
			t.Fatalf("ReadRequest: %q, %v; want %s", h.Path, err, path)
		}
	}
	cc.Close()
	if err := c.Wait(); err != io.EOF {
		t.Fatalf("Wait after close: %v, want EOF", err)
	}
	if parkedWithBuffer.Load() != 0 {
		t.Fatal("Wait parked holding a buffer")
	}
}
