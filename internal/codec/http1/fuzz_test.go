package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
)

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a?b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"\r\nPOST /p HTTP/1.1\r\nHost: h:80\r\nContent-Length: 5, 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n",
	"GET http://x.example:8/p HTTP/1.1\r\nHost: y\r\n\r\n",
	"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET /\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
}

// FuzzParseRequestHead checks the parser never panics and that whatever it accepts is
// self-consistent, stable under re-parsing, incomplete at every proper prefix, and framed the
// same way by Go's net/http when that parser accepts it too: a framing disagreement between two
// parsers is exactly what request smuggling needs.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxHeaderBytes: 4096, MaxHeaders: 32, MaxRequestLine: 1024}
		orig := bytes.Clone(data)
		buf := bytes.Clone(data)
		var h header.Map
		var rh RequestHead
		n, err := ParseRequestHead(buf, &h, &rh, lim)
		if err != nil {
			if err != ErrNeedMore && statusOf(err) == 0 {
				t.Fatalf("error is neither ErrNeedMore nor *Error: %v", err)
			}
			return
		}
		if n <= 0 || n > len(buf) || n != rh.HeaderBytes || n > lim.MaxHeaderBytes {
			t.Fatalf("n = %d, HeaderBytes = %d, len = %d", n, rh.HeaderBytes, len(buf))
		}
		if !bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) && n != len("\r\n") {
			t.Fatalf("head does not end with an empty line: %q", buf[:n])
		}
		if !validToken(h.Method) {
			t.Fatalf("method %q", h.Method)
		}
		if (h.Method == "CONNECT") != (h.Path == "") {
			t.Fatalf("method %q with path %q", h.Method, h.Path)
		}
		if h.Len() > lim.MaxHeaders {
			t.Fatalf("%d fields", h.Len())
		}
		for _, fl := range h.Fields() {
			if !validToken(fl.Name) || fl.Name != strings.ToLower(fl.Name) || fl.Name == "host" {
				t.Fatalf("field name %q", fl.Name)
			}
			for i := 0; i < len(fl.Value); i++ {
				if !isFieldValue[fl.Value[i]] {
					t.Fatalf("field value %q", fl.Value)
				}
			}
		}
		switch rh.Framing.Kind {
		case None:
			if h.Has("content-length") || h.Has("transfer-encoding") {
				t.Fatal("framing fields present but no framing")
			}
		case Length:
			if rh.Framing.Length < 0 || !h.Has("content-length") || h.Has("transfer-encoding") {
				t.Fatalf("length framing %+v", rh.Framing)
			}
		case Chunked:
			if !h.Has("transfer-encoding") || h.Has("content-length") || rh.Minor != 1 {
				t.Fatalf("chunked framing with fields %q", fieldsString(&h))
			}
		default:
			t.Fatalf("request framing %v", rh.Framing.Kind)
		}
		if rh.Minor == 1 && !bytes.Contains(bytes.ToLower(orig[:n]), []byte("\nhost:")) {
			t.Fatal("HTTP/1.1 accepted without Host")
		}

		// Stable: the same bytes (now with lower-cased names) parse the same way.
		var h2 header.Map
		var rh2 RequestHead
		n2, err := ParseRequestHead(bytes.Clone(buf), &h2, &rh2, lim)
		if err != nil || n2 != n || rh2 != rh || fieldsString(&h2) != fieldsString(&h) ||
			h2.Method != h.Method || h2.Path != h.Path || h2.Authority != h.Authority {
			t.Fatalf("re-parse differs: %v %d %+v", err, n2, rh2)
		}
		// Incremental: a proper prefix is never a different complete head.
		for _, cut := range []int{n - 1, n / 2} {
			if cut <= 0 {
				continue
			}
			var h3 header.Map
			var rh3 RequestHead
			if _, err := ParseRequestHead(bytes.Clone(orig[:cut]), &h3, &rh3, lim); err != ErrNeedMore {
				t.Fatalf("prefix %d of accepted head: %v", cut, err)
			}
		}

		// Differential framing against net/http.
		req, gerr := http.ReadRequest(bufio.NewReader(bytes.NewReader(orig[:n])))
		if gerr != nil {
			return
		}
		switch rh.Framing.Kind {
		case Chunked:
			if len(req.TransferEncoding) != 1 || req.TransferEncoding[0] != "chunked" {
				t.Fatalf("net/http framing %v/%d, ours chunked", req.TransferEncoding, req.ContentLength)
			}
		case Length:
			if req.ContentLength != rh.Framing.Length || len(req.TransferEncoding) != 0 {
				t.Fatalf("net/http framing %v/%d, ours %d", req.TransferEncoding, req.ContentLength, rh.Framing.Length)
			}
		case None:
			if req.ContentLength > 0 || len(req.TransferEncoding) != 0 {
				t.Fatalf("net/http framing %v/%d, ours none", req.TransferEncoding, req.ContentLength)
			}
		}
	})
}

var chunkedSeeds = []string{
	"5\r\nhello\r\n0\r\n\r\n",
	"5;a=b;c=\"d\"\r\nhello\r\n0\r\nx-t: 1\r\n\r\n",
	"1\r\na\r\n1\r\nb\r\n0\r\n\r\nGET /next",
	"ffffffffffffffffff\r\n",
	"5 \r\nhello\r\n0\r\n\r\n",
	"5\r\nhelloX\r\n0\r\n\r\n",
	"0\r\nContent-Length: 1\r\n\r\n",
	"0\r\n\n",
	"A\r\n0123456789\r\n0\r\n\r\n",
}

// decodeAll runs the decoder over body fed in pieces of at most step bytes (all at once when
// step is 0), the way a connection sees it arrive.
func decodeAll(body []byte, step int) (data []byte, trailers string, used int, err error) {
	var tr header.Map
	var d chunkedDecoder
	d.reset(Limits{MaxHeaderBytes: 4096, MaxHeaders: 32}, &tr)
	avail := len(body)
	if step > 0 {
		avail = min(step, len(body))
	}
	buf := bytes.Clone(body)
	pos := 0
	for !d.done() {
		n, b, err := d.decode(buf[pos:avail])
		pos += n
		data = append(data, b...)
		if err == ErrNeedMore {
			if avail == len(buf) {
				return data, "", pos, io.ErrUnexpectedEOF
			}
			avail = min(avail+max(step, 1), len(buf))
			continue
		}
		if err != nil {
			return data, "", pos, err
		}
	}
	return data, fieldsString(&tr), pos, nil
}

// FuzzChunkedBody checks the chunked decoder never panics, gives the same answer however the
// input is split, and agrees with Go's chunked reader on every body it accepts.
func FuzzChunkedBody(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, body []byte, step uint8) {
		data, trailers, used, err := decodeAll(body, 0)
		data2, trailers2, used2, err2 := decodeAll(body, int(step))
		if (err == nil) != (err2 == nil) || statusOf(err) != statusOf(err2) {
			t.Fatalf("whole: %v, split by %d: %v", err, step, err2)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(data, data2) || trailers != trailers2 || used != used2 {
			t.Fatalf("split by %d changed the result", step)
		}
		if used > len(body) || len(data) > used {
			t.Fatalf("used %d of %d, decoded %d", used, len(body), len(data))
		}
		ref, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(body[:used])))
		if rerr != nil || !bytes.Equal(ref, data) {
			t.Fatalf("net/http/httputil: %q, %v; ours %q", ref, rerr, data)
		}
	})
}

// TestFuzzSeeds keeps the seed corpora honest in ordinary test runs: every seed must either be
// accepted or refused with a status, never fall through.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range requestSeeds {
		t.Run(strings.ReplaceAll(s, "\r\n", "|"), func(t *testing.T) {
			var h header.Map
			var rh RequestHead
			_, err := ParseRequestHead([]byte(s), &h, &rh, Limits{})
			if err != nil && statusOf(err) == 0 {
				t.Fatalf("seed gives %v", err)
			}
		})
	}
}
