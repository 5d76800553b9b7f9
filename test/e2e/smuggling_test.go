package e2e

import (
	"strings"
	"testing"
)

// TestRequestSmuggling sends requests that proxies and servers have historically framed
// differently. Each must be refused with the right status before anything reaches the
// upstream, or normalised so that the upstream sees exactly one unambiguous request.
func TestRequestSmuggling(t *testing.T) {
	p := startRouting(t)
	addr := p.addr("web")
	tests := []struct {
		name       string
		raw        string
		wantStatus int
	}{
		{name: "CL and TE together", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE and CL together", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "duplicate differing CL", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", wantStatus: 400},
		{name: "CL list", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde", wantStatus: 400},
		{name: "CL with plus sign", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", wantStatus: 400},
		{name: "CL negative", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", wantStatus: 400},
		{name: "CL hex", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nabcd", wantStatus: 400},
		{name: "CL overflow", raw: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", wantStatus: 400},
		{name: "TE xchunked", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", wantStatus: 501},
		{name: "TE chunked not last", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE chunked twice", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE with leading space obfuscation in name", raw: "POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "space before colon", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "tab before colon", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "obs-fold", raw: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", wantStatus: 400},
		{name: "bare LF line ending", raw: "GET / HTTP/1.1\nHost: x\n\n", wantStatus: 400},
		{name: "bare CR in value", raw: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", wantStatus: 400},
		{name: "NUL in header value", raw: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", wantStatus: 400},
		{name: "invalid header name", raw: "GET / HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n", wantStatus: 400},
		{name: "missing host", raw: "GET / HTTP/1.1\r\n\r\n", wantStatus: 400},
		{name: "duplicate host", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", wantStatus: 400},
		{name: "HTTP/0.9 style", raw: "GET /\r\n\r\n", wantStatus: 400},
		{name: "unsupported version", raw: "GET / HTTP/2.1\r\nHost: x\r\n\r\n", wantStatus: 505},
		{name: "bad chunk size", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk size overflow", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk data without CRLF", raw: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", wantStatus: 400},
		{name: "request line with spaces in target", raw: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", wantStatus: 400},
		{name: "invalid method", raw: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", wantStatus: 400},
		{name: "relative target", raw: "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", wantStatus: 400},
		{name: "oversized header block", raw: "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", wantStatus: 431},
		{name: "oversized request line", raw: "GET /" + strings.Repeat("a", 70<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", wantStatus: 414},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := rawExchange(t, addr, tc.raw)
			if got := statusOf(out); got != tc.wantStatus {
				t.Fatalf("status %d, want %d; response:\n%.300s", got, tc.wantStatus, out)
			}
			// A refused request closes the connection: nothing after it may be interpreted.
			if strings.Count(out, "HTTP/1.1 ") > 1 {
				t.Errorf("more than one response on a refused connection:\n%.600s", out)
			}
		})
	}

	t.Run("smuggled second request is not seen", func(t *testing.T) {
		// The body of a CL+TE request holds a second request; since the first is refused
		// and the connection closed, the second must never produce a response.
		raw := "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
		out := rawExchange(t, addr, raw)
		if statusOf(out) != 400 || strings.Contains(out, "/admin") || strings.Count(out, "HTTP/1.1") != 1 {
			t.Fatalf("smuggled request answered:\n%.600s", out)
		}
	})
}
