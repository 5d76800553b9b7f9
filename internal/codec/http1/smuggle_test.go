package http1

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// served is what a ServerConn made of a raw byte stream: the first request, its body read to
// the end, and the head of whatever followed it on the connection.
type served struct {
	Method, Path, Authority string
	Framing                 Framing
	KeepAlive               bool
	Body                    string
	Trailers                string
	Next                    string // "METHOD path" of the next pipelined request
}

func serve(raw string, step int) (served, error) {
	c := NewServerConn(&memConn{in: []byte(raw), step: step}, Limits{})
	defer c.Release()
	var h header.Map
	var rh RequestHead
	if err := c.ReadRequest(&h, &rh); err != nil {
		return served{}, err
	}
	s := served{
		Method: strings.Clone(h.Method), Path: strings.Clone(h.Path),
		Authority: strings.Clone(h.Authority), Framing: rh.Framing, KeepAlive: rh.KeepAlive,
	}
	for {
		b, end, err := c.ReadBody()
		if err != nil {
			return s, err
		}
		s.Body += string(b)
		if end {
			break
		}
	}
	var t header.Map
	c.Trailers(&t)
	s.Trailers = fieldsString(&t)
	switch err := c.ReadRequest(&h, &rh); {
	case err == nil:
		s.Next = h.Method + " " + h.Path
	case err != io.EOF:
		return s, err
	}
	return s, nil
}

func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// TestSmugglingCorpus runs known request-smuggling and desync vectors through the server side.
// Each must be refused with the status RFC 9112 calls for or, where the RFC defines a single
// reading, accepted with exactly that reading. Every case runs with the input in one read and
// dribbled a byte at a time: the verdict must not depend on how TCP segments the stream.
func TestSmugglingCorpus(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		wantStatus int     // the *Error status expected; 0 when the request is accepted
		wantErr    error   // a non-protocol error expected instead (truncation)
		want       *served // the normalised reading, for accepted requests
	}{
		// CL.TE / TE.CL: the classic desyncs. Either field alone is unambiguous; both together
		// are refused rather than resolved (RFC 9112 §6.1 allows either).
		{name: "CL.TE", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", wantStatus: 400},
		{name: "TE.CL", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "CL.TE with CL 0", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", wantStatus: 400},

		// TE.TE: obfuscated Transfer-Encoding that one hop honours and another ignores.
		{name: "TE xchunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", wantStatus: 501},
		{name: "TE chunked then identity", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", wantStatus: 400},
		{name: "TE identity alone", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", wantStatus: 501},
		{name: "TE gzip then chunked", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", wantStatus: 501},
		{name: "TE split over two fields, chunked first", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n", wantStatus: 400},
		{name: "TE split over two fields, chunked last", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n", wantStatus: 501},
		{name: "TE chunked twice", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", wantStatus: 400},
		{name: "TE space before colon", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE tab before colon", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE vertical tab in value", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE with inner space", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE trailing comma", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE obs-fold", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", wantStatus: 400},
		{name: "TE leading space is OWS", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			want: &served{Method: "POST", Path: "/", Authority: "a", Framing: Framing{Kind: Chunked}, KeepAlive: true, Body: "abc"}},
		{name: "TE tab is OWS", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tCHUNKED\t\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			want: &served{Method: "POST", Path: "/", Authority: "a", Framing: Framing{Kind: Chunked}, KeepAlive: true, Body: "abc"}},

		// Content-Length variants that lenient number parsers read differently.
		{name: "CL plus sign", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", wantStatus: 400},
		{name: "CL negative", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", wantStatus: 400},
		{name: "CL hex", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", wantStatus: 400},
		{name: "CL overflow", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551621\r\n\r\nhello", wantStatus: 400},
		{name: "CL empty", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", wantStatus: 400},
		{name: "CL inner space", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", wantStatus: 400},
		{name: "CL list differing", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", wantStatus: 400},
		{name: "CL fields differing", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", wantStatus: 400},
		{name: "CL list trailing comma", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello", wantStatus: 400},
		{name: "CL list identical is folded", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
			want: &served{Method: "POST", Path: "/x", Authority: "a", Framing: Framing{Kind: Length, Length: 5}, KeepAlive: true, Body: "hello"}},
		{name: "CL fields identical are folded", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			want: &served{Method: "POST", Path: "/x", Authority: "a", Framing: Framing{Kind: Length, Length: 5}, KeepAlive: true, Body: "hello"}},
		{name: "CL leading zeros are decimal", raw: "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000000005\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &served{Method: "POST", Path: "/x", Authority: "a", Framing: Framing{Kind: Length, Length: 5}, KeepAlive: true, Body: "hello", Next: "GET /next"}},
		{name: "CL truncated body", raw: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello", wantErr: io.ErrUnexpectedEOF},

		// Field syntax that some parsers normalise into something else.
		{name: "name with space", raw: "GET / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\n", wantStatus: 400},
		{name: "NUL in name", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A\x00b: 1\r\n\r\n", wantStatus: 400},
		{name: "NUL in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", wantStatus: 400},
		{name: "DEL in value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x7f\r\n\r\n", wantStatus: 400},
		{name: "empty name", raw: "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", wantStatus: 400},
		{name: "no colon", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", wantStatus: 400},
		{name: "bare LF ends field", raw: "GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", wantStatus: 400},
		{name: "bare LF ends head", raw: "GET / HTTP/1.1\r\nHost: a\r\n\n", wantStatus: 400},
		{name: "bare LF request line", raw: "GET / HTTP/1.1\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "bare CR inside value", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n", wantStatus: 400},
		{name: "bare CR before request", raw: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "obs-fold", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", wantStatus: 400},
		{name: "obs-fold tab", raw: "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", wantStatus: 400},
		{name: "leading whitespace on first field", raw: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", wantStatus: 400},

		// Host and target: what routing sees must be what the upstream sees.
		{name: "missing Host", raw: "GET / HTTP/1.1\r\n\r\n", wantStatus: 400},
		{name: "two Host fields", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", wantStatus: 400},
		{name: "Host with userinfo", raw: "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", wantStatus: 400},
		{name: "Host with path", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", wantStatus: 400},
		{name: "Host list", raw: "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", wantStatus: 400},
		{name: "absolute-form overrides Host", raw: "GET http://b.example:8080/p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &served{Method: "GET", Path: "/p?q=1", Authority: "b.example:8080", KeepAlive: true}},
		{name: "absolute-form with userinfo", raw: "GET http://u@b/ HTTP/1.1\r\nHost: b\r\n\r\n", wantStatus: 400},
		{name: "absolute-form unknown scheme", raw: "GET ftp://b/ HTTP/1.1\r\nHost: b\r\n\r\n", wantStatus: 400},
		{name: "fragment in target", raw: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "non-ASCII in target", raw: "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "CONNECT origin-form", raw: "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "asterisk for GET", raw: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},

		// Request line.
		{name: "HTTP/0.9", raw: "GET /\r\n\r\n", wantStatus: 400},
		{name: "HTTP/2.0 over HTTP/1 framing", raw: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", wantStatus: 505},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", wantStatus: 505},
		{name: "lower-case version", raw: "GET / http/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "two-digit minor", raw: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "double SP", raw: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "tab separator", raw: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "method with separator", raw: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "leading CRLFs skipped", raw: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &served{Method: "GET", Path: "/", Authority: "a", KeepAlive: true}},

		// Chunked bodies.
		{name: "chunk size overflow", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk size 0x prefix", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk size negative", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", wantStatus: 400},
		{name: "chunk size empty", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk size trailing space", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk size bare LF", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk data without CRLF", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk data with bare LF", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk extension oversized", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=" + strings.Repeat("b", 5000) + "\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk extensions too many in total", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;a="+strings.Repeat("b", 3000)+"\r\nx\r\n", 6) + "0\r\n\r\n", wantStatus: 400},
		{name: "chunk extension with CTL", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk extension bare CR", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk extension unterminated quote", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n", wantStatus: 400},
		{name: "chunk extensions are dropped", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a=b;c=\"d;\\\"e\"\r\nhello\r\n0;z\r\n\r\n",
			want: &served{Method: "POST", Path: "/", Authority: "a", Framing: Framing{Kind: Chunked}, KeepAlive: true, Body: "hello"}},
		{name: "missing last-chunk CRLF", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", wantErr: io.ErrUnexpectedEOF},
		{name: "last chunk ends with bare LF", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 400},
		{name: "trailer Content-Length", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", wantStatus: 400},
		{name: "trailer Transfer-Encoding", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", wantStatus: 400},
		{name: "trailer Host", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nHost: evil\r\n\r\n", wantStatus: 400},
		{name: "trailer obs-fold", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", wantStatus: 400},
		{name: "trailers kept", raw: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nGrpc-Status: 0\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n",
			want: &served{Method: "POST", Path: "/", Authority: "a", Framing: Framing{Kind: Chunked}, KeepAlive: true, Body: "hello", Trailers: "x-checksum: abc\ngrpc-status: 0\n", Next: "GET /n"}},

		// Limits.
		{name: "request line too long", raw: "GET /" + strings.Repeat("a", 17<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", wantStatus: 414},
		{name: "header section too large", raw: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\r\n", 62) + "\r\n", wantStatus: 431},
		{name: "too many fields", raw: "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 101) + "\r\n", wantStatus: 431},
	}
	for _, tc := range tests {
		for _, step := range []int{0, 1} {
			name := tc.name
			if step == 1 {
				name += "/dribbled"
			}
			t.Run(name, func(t *testing.T) {
				got, err := serve(tc.raw, step)
				switch {
				case tc.wantStatus != 0:
					if statusOf(err) != tc.wantStatus {
						t.Fatalf("err = %v, want status %d", err, tc.wantStatus)
					}
				case tc.wantErr != nil:
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("err = %v, want %v", err, tc.wantErr)
					}
				default:
					if err != nil {
						t.Fatalf("unexpected error: %v", err)
					}
					if got != *tc.want {
						t.Fatalf("got  %+v\nwant %+v", got, *tc.want)
					}
				}
			})
		}
	}
}
