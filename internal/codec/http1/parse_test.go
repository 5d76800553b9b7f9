package http1

import (
	"errors"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

func TestParseRequestHead(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		lim        Limits
		wantStatus int
		wantMore   bool // ErrNeedMore
		wantMethod string
		wantPath   string
		wantAuth   string
		wantScheme string
		wantFields string
		wantHead   RequestHead
	}{
		{
			name:       "typical GET",
			raw:        "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\nAccept:  */*  \r\nX-Empty:\r\n\r\n",
			wantMethod: "GET", wantPath: "/a?b=c", wantAuth: "example.com",
			wantFields: "user-agent: t\naccept: */*\nx-empty: \n",
			wantHead:   RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "names lower-cased, order and duplicates kept",
			raw:        "POST /p HTTP/1.1\r\nHOST: h:8080\r\nX-Dup: 1\r\nCONTENT-LENGTH: 3\r\nx-dup: 2\r\n\r\n",
			wantMethod: "POST", wantPath: "/p", wantAuth: "h:8080",
			wantFields: "x-dup: 1\ncontent-length: 3\nx-dup: 2\n",
			wantHead:   RequestHead{Major: 1, Minor: 1, KeepAlive: true, Framing: Framing{Kind: Length, Length: 3}},
		},
		{
			name:       "HTTP/1.0 without Host closes",
			raw:        "GET / HTTP/1.0\r\n\r\n",
			wantMethod: "GET", wantPath: "/",
			wantHead: RequestHead{Major: 1, Minor: 0},
		},
		{
			name:       "HTTP/1.0 keep-alive",
			raw:        "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			wantMethod: "GET", wantPath: "/", wantFields: "connection: Keep-Alive\n",
			wantHead: RequestHead{Major: 1, Minor: 0, KeepAlive: true},
		},
		{
			name:       "HTTP/1.0 ignores Expect",
			raw:        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
			wantMethod: "POST", wantPath: "/", wantFields: "expect: 100-continue\ncontent-length: 1\n",
			wantHead: RequestHead{Major: 1, Minor: 0, Framing: Framing{Kind: Length, Length: 1}},
		},
		{
			name:       "connection close among tokens",
			raw:        "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE ,bar\r\n\r\n",
			wantMethod: "GET", wantPath: "/", wantAuth: "a", wantFields: "connection: foo, CLOSE ,bar\n",
			wantHead: RequestHead{Major: 1, Minor: 1},
		},
		{
			name:       "expect 100-continue",
			raw:        "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n",
			wantMethod: "PUT", wantPath: "/u", wantAuth: "a", wantFields: "expect: 100-Continue\ncontent-length: 10\n",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true, Expect100: true, Framing: Framing{Kind: Length, Length: 10}},
		},
		{
			name:       "websocket upgrade",
			raw:        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			wantMethod: "GET", wantPath: "/ws", wantAuth: "a", wantFields: "connection: keep-alive, Upgrade\nupgrade: websocket\n",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true, Upgrade: "websocket"},
		},
		{
			name:       "Upgrade without Connection: upgrade is not an upgrade",
			raw:        "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
			wantMethod: "GET", wantPath: "/ws", wantAuth: "a", wantFields: "upgrade: websocket\n",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "CONNECT authority-form",
			raw:        "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n",
			wantMethod: "CONNECT", wantAuth: "db.internal:5432",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "CONNECT IPv6",
			raw:        "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
			wantMethod: "CONNECT", wantAuth: "[::1]:443",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{name: "CONNECT without port", raw: "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{
			name:       "OPTIONS asterisk",
			raw:        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			wantMethod: "OPTIONS", wantPath: "*", wantAuth: "a",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "absolute-form https without path",
			raw:        "GET HTTPS://b.example HTTP/1.1\r\nHost: b.example\r\n\r\n",
			wantMethod: "GET", wantPath: "/", wantAuth: "b.example", wantScheme: "https",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "absolute-form query without path",
			raw:        "GET http://b?x=1 HTTP/1.1\r\nHost: b\r\n\r\n",
			wantMethod: "GET", wantPath: "/?x=1", wantAuth: "b", wantScheme: "http",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{name: "absolute-form empty host", raw: "GET http:///x HTTP/1.1\r\nHost: b\r\n\r\n", wantStatus: 400},
		{
			name:       "empty Host allowed",
			raw:        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			wantMethod: "GET", wantPath: "/",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "extension method kept verbatim",
			raw:        "PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n",
			wantMethod: "PROPFIND", wantPath: "/d", wantAuth: "a",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{
			name:       "obs-text in value",
			raw:        "GET / HTTP/1.1\r\nHost: a\r\nX-U: caf\xe9\r\n\r\n",
			wantMethod: "GET", wantPath: "/", wantAuth: "a", wantFields: "x-u: caf\xe9\n",
			wantHead: RequestHead{Major: 1, Minor: 1, KeepAlive: true},
		},
		{name: "incomplete request line", raw: "GET / HTTP/1.", wantMore: true},
		{name: "incomplete CRLF", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r", wantMore: true},
		{name: "incomplete lone CR", raw: "\r", wantMore: true},
		{name: "incomplete field", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1", wantMore: true},
		{name: "incomplete fold is refused early", raw: "GET / HTTP/1.1\r\nHost: a\r\n x", wantStatus: 400},
		{name: "incomplete line over MaxRequestLine", raw: "GET /" + strings.Repeat("a", 100), lim: Limits{MaxRequestLine: 64}, wantStatus: 414},
		{name: "incomplete head over MaxHeaderBytes", raw: "GET / HTTP/1.1\r\nX-A: " + strings.Repeat("a", 200), lim: Limits{MaxHeaderBytes: 128}, wantStatus: 431},
		{name: "MaxHeaders custom", raw: "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", lim: Limits{MaxHeaders: 2}, wantStatus: 431},
		{name: "complete head over MaxHeaderBytes", raw: "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("a", 200) + "\r\n\r\n", lim: Limits{MaxHeaderBytes: 128}, wantStatus: 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h header.Map
			var rh RequestHead
			buf := []byte(tc.raw)
			n, err := ParseRequestHead(buf, &h, &rh, tc.lim)
			switch {
			case tc.wantMore:
				if err != ErrNeedMore {
					t.Fatalf("err = %v, want ErrNeedMore", err)
				}
				return
			case tc.wantStatus != 0:
				if statusOf(err) != tc.wantStatus {
					t.Fatalf("err = %v, want status %d", err, tc.wantStatus)
				}
				return
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
			if n != len(tc.raw) {
				t.Errorf("n = %d, want %d", n, len(tc.raw))
			}
			if h.Method != tc.wantMethod || h.Path != tc.wantPath || h.Authority != tc.wantAuth || h.Scheme != tc.wantScheme {
				t.Errorf("pseudo = %q %q %q %q, want %q %q %q %q", h.Method, h.Path, h.Authority, h.Scheme,
					tc.wantMethod, tc.wantPath, tc.wantAuth, tc.wantScheme)
			}
			if got := fieldsString(&h); got != tc.wantFields {
				t.Errorf("fields:\n%s\nwant:\n%s", got, tc.wantFields)
			}
			want := tc.wantHead
			want.HeaderBytes = len(tc.raw)
			if rh != want {
				t.Errorf("head = %+v, want %+v", rh, want)
			}
		})
	}
}

func TestParseResponseHead(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		method     string
		wantStatus int // *Error status; 0 when accepted
		wantHead   ResponseHead
		wantFields string
	}{
		{
			name: "content-length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 200, Reason: "OK", Framing: Framing{Kind: Length, Length: 5}, KeepAlive: true},
			wantFields: "content-length: 5\nserver: x\n",
		},
		{
			name: "chunked", raw: "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", method: "POST",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 201, Reason: "Created", Framing: Framing{Kind: Chunked}, KeepAlive: true},
			wantFields: "transfer-encoding: chunked\n",
		},
		{
			name: "no framing reads until close", raw: "HTTP/1.1 200 OK\r\n\r\n", method: "GET",
			wantHead: ResponseHead{Major: 1, Minor: 1, Status: 200, Reason: "OK", Framing: Framing{Kind: UntilClose}},
		},
		{
			name: "HEAD has no body", raw: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", method: "HEAD",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 200, Reason: "OK", KeepAlive: true},
			wantFields: "content-length: 100\n",
		},
		{
			name: "204 has no body", raw: "HTTP/1.1 204 No Content\r\n\r\n", method: "DELETE",
			wantHead: ResponseHead{Major: 1, Minor: 1, Status: 204, Reason: "No Content", KeepAlive: true},
		},
		{
			name: "304 has no body", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 304, Reason: "Not Modified", KeepAlive: true},
			wantFields: "content-length: 9\n",
		},
		{
			name: "CONNECT 200 is a tunnel", raw: "HTTP/1.1 200 Connection Established\r\n\r\n", method: "CONNECT",
			wantHead: ResponseHead{Major: 1, Minor: 1, Status: 200, Reason: "Connection Established"},
		},
		{
			name: "101", raw: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 101, Reason: "Switching Protocols"},
			wantFields: "upgrade: websocket\nconnection: Upgrade\n",
		},
		{
			name: "missing reason", raw: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 404, Framing: Framing{Kind: Length}, KeepAlive: true},
			wantFields: "content-length: 0\n",
		},
		{
			name: "HTTP/1.0 closes", raw: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 0, Status: 200, Reason: "OK", Framing: Framing{Kind: Length}},
			wantFields: "content-length: 0\n",
		},
		{
			name: "connection close", raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method: "GET",
			wantHead:   ResponseHead{Major: 1, Minor: 1, Status: 200, Reason: "OK", Framing: Framing{Kind: Length}},
			wantFields: "connection: close\ncontent-length: 0\n",
		},
		{name: "CL and TE", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "bad CL", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "gzip coding", raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "bad status", raw: "HTTP/1.1 2x0 OK\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "status below 100", raw: "HTTP/1.1 099 OK\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "HTTP/2 status line", raw: "HTTP/2.0 200 OK\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "bare LF", raw: "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", method: "GET", wantStatus: 502},
		{name: "obs-fold", raw: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", method: "GET", wantStatus: 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h header.Map
			var rh ResponseHead
			n, err := ParseResponseHead([]byte(tc.raw), &h, &rh, tc.method, Limits{})
			if tc.wantStatus != 0 {
				if statusOf(err) != tc.wantStatus {
					t.Fatalf("err = %v, want status %d", err, tc.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if n != len(tc.raw) {
				t.Errorf("n = %d, want %d", n, len(tc.raw))
			}
			if rh != tc.wantHead {
				t.Errorf("head = %+v, want %+v", rh, tc.wantHead)
			}
			if h.Status != tc.wantHead.Status {
				t.Errorf("h.Status = %d", h.Status)
			}
			if got := fieldsString(&h); got != tc.wantFields {
				t.Errorf("fields:\n%s\nwant:\n%s", got, tc.wantFields)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	var h header.Map
	var rh RequestHead
	_, err := ParseRequestHead([]byte("GET / HTTP/3.0\r\n\r\n"), &h, &rh, Limits{})
	var e *Error
	if !errors.As(err, &e) || e.Error() != "http1: 505 HTTP version not supported" {
		t.Fatalf("err = %v", err)
	}
}

// TestValidFieldValue compares the word-at-a-time check with the byte table for every byte in
// every position of a word, and across the word/tail boundary.
func TestValidFieldValue(t *testing.T) {
	for _, size := range []int{1, 7, 8, 9, 16, 19} {
		for pos := range size {
			for c := range 256 {
				v := []byte(strings.Repeat("a", size))
				v[pos] = byte(c)
				if got, want := validFieldValue(v), isFieldValue[c]; got != want {
					t.Fatalf("size %d, byte %#x at %d: got %v, want %v", size, c, pos, got, want)
				}
			}
		}
	}
}
