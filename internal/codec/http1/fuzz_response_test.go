package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// responseSeeds are upstream answers that a gateway and the server behind it could frame
// differently: the raw material of response splitting and desync.
var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
	"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nx-sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nx",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\n\r\nok",
	"HTTP/1.1 200 OK\r\n\r\nuntil the connection closes",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 999 Odd\r\nContent-Length: +1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding\t: chunked\r\n\r\nx",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n",
}

// responseMethods are the request methods a fuzz input picks from: they decide, with the
// status, whether the response has a body.
var responseMethods = []string{"GET", "HEAD", "POST"}

// clientResult is everything ClientConn made of one response.
type clientResult struct {
	head     ResponseHead
	fields   string
	body     []byte
	trailers string
	err      error
	inHead   bool // err came from the head
}

// readClientResponse writes a request for method and reads the response in to its end
// through a ClientConn, the connection's input arriving step bytes at a time (0: at once).
func readClientResponse(t *testing.T, in []byte, method string, step int) clientResult {
	nc := &memConn{in: bytes.Clone(in), step: step}
	c := NewClientConn(nc, Limits{MaxHeaderBytes: 4096, MaxHeaders: 32})
	defer c.Release()
	req := header.Map{Method: method, Path: "/", Authority: "up.test"}
	fr := Framing{Kind: None}
	if method == "POST" {
		fr = Framing{Kind: Length}
	}
	if err := c.WriteRequestHead(&req, fr); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var res clientResult
	var h header.Map
	if res.err = c.ReadResponse(&h, &res.head, method); res.err != nil {
		res.inHead = true
		return res
	}
	// The head aliases the connection's buffers, which Release gives back to the pool.
	res.head.Reason = strings.Clone(res.head.Reason)
	res.fields = fieldsString(&h)
	// Every read makes progress or ends: more reads than input bytes means a loop.
	for i := 0; ; i++ {
		if i > len(in)+2 {
			t.Fatalf("ReadBody does not end after %d reads", i)
		}
		b, end, err := c.ReadBody()
		if err != nil {
			res.err = err
			return res
		}
		res.body = append(res.body, b...)
		if end {
			break
		}
	}
	var tr header.Map
	c.Trailers(&tr)
	res.trailers = fieldsString(&tr)
	return res
}

// netHTTPResponse reads the same bytes with net/http's client, skipping interim responses
// as ClientConn does, and returns the final status and body.
func netHTTPResponse(in []byte, method string) (int, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(in))
	req := &http.Request{Method: method}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return 0, nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			continue
		}
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
}

// FuzzClientResponse checks how the upstream side reads responses: it never panics, gives
// the same answer however the bytes arrive, delivers bodies that match the framing it
// announced, and, on every response Go's net/http also reads without complaint, agrees with
// it on the status and the body. Two parsers that frame one response differently are how a
// response gets split, or a poisoned one lands in front of another client.
func FuzzClientResponse(f *testing.F) {
	for _, s := range responseSeeds {
		for m := range responseMethods {
			f.Add([]byte(s), uint8(m), uint8(3))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, m, step uint8) {
		method := responseMethods[int(m)%len(responseMethods)]
		got := readClientResponse(t, in, method, 0)
		split := readClientResponse(t, in, method, int(step%16)+1)
		// The reader parses a head again only once a new line is complete, so a head cut
		// short may end as truncated when dribbled and as malformed when whole.
		truncated := errors.Is(got.err, io.ErrUnexpectedEOF) || errors.Is(split.err, io.ErrUnexpectedEOF)
		if (got.err == nil) != (split.err == nil) || (!truncated && statusOf(got.err) != statusOf(split.err)) {
			t.Fatalf("at once: %v; %d bytes at a time: %v", got.err, step%16+1, split.err)
		}
		if got.err == nil && (got.head != split.head || got.fields != split.fields ||
			!bytes.Equal(got.body, split.body) || got.trailers != split.trailers) {
			t.Fatalf("arrival in pieces changed the response:\n%+v\n%+v", got, split)
		}
		if got.err != nil {
			// A malformed head is the gateway's 502 to report (a body error comes too late
			// for a status, and keeps the codec's own).
			if st := statusOf(got.err); got.inHead && st != 0 && st != 502 {
				t.Fatalf("a bad response head gives status %d, want 502: %v", st, got.err)
			}
			return
		}
		hd := got.head
		if hd.Status < 100 || hd.Status > 999 || (hd.Status < 200 && hd.Status != 101) {
			t.Fatalf("final status %d", hd.Status)
		}
		switch hd.Framing.Kind {
		case None:
			if len(got.body) != 0 {
				t.Fatalf("a response without a body delivered %q", got.body)
			}
		case Length:
			if int64(len(got.body)) != hd.Framing.Length {
				t.Fatalf("content-length %d delivered %d bytes", hd.Framing.Length, len(got.body))
			}
		case UntilClose:
			if hd.KeepAlive {
				t.Fatal("a close-delimited response keeps the connection alive")
			}
		}
		if got.trailers != "" && hd.Framing.Kind != Chunked {
			t.Fatalf("trailers without chunking: %q", got.trailers)
		}
		if hd.Status == 101 {
			return // the rest belongs to the new protocol
		}
		status, body, err := netHTTPResponse(in, method)
		if err != nil {
			return // net/http refuses what we accept: stricter on its side, not a split
		}
		if status != hd.Status || !bytes.Equal(body, got.body) {
			t.Fatalf("net/http reads %d %q; ClientConn reads %d %q (framing %v)",
				status, body, hd.Status, got.body, hd.Framing.Kind)
		}
	})
}

// TestResponseFuzzSeeds runs the response seeds in ordinary test runs: each one is read to
// its end or refused, never hangs or panics.
func TestResponseFuzzSeeds(t *testing.T) {
	for _, s := range responseSeeds {
		for _, method := range responseMethods {
			t.Run(method+" "+strings.ReplaceAll(s, "\r\n", "|"), func(t *testing.T) {
				got := readClientResponse(t, []byte(s), method, 0)
				if got.err != nil && statusOf(got.err) == 0 && !errors.Is(got.err, io.ErrUnexpectedEOF) {
					t.Fatalf("seed gives %v", got.err)
				}
			})
		}
	}
}
