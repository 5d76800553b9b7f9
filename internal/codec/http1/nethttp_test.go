package http1

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// TestClientAgainstNetHTTP drives one ClientConn against Go's HTTP/1.1 server, an independent
// implementation, through every framing it produces.
func TestClientAgainstNetHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/cl", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Sum", "s")
	})
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(500)
			return
		}
		w.Header().Set("X-Host", r.Host)
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-Trailer", r.Trailer.Get("X-Req-Sum"))
		w.Write(body)
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := NewClientConn(dial(t, srv.Listener.Addr().String()), Limits{})
	defer c.Release()
	tests := []struct {
		name         string
		method, path string
		framing      Framing
		body         []string
		trailers     []header.Field
		wantStatus   int
		wantBody     string
		wantFields   map[string]string
		wantTrailers string
		wantReusable bool
	}{
		{name: "content-length", method: "GET", path: "/cl", wantStatus: 200, wantBody: "hello", wantReusable: true},
		{name: "chunked with trailer", method: "GET", path: "/chunked", wantStatus: 200, wantBody: "part1,part2",
			wantFields: map[string]string{"transfer-encoding": "chunked"}, wantTrailers: "x-sum: s\n", wantReusable: true},
		{name: "HEAD", method: "HEAD", path: "/head", wantStatus: 200, wantFields: map[string]string{"content-length": "100"}, wantReusable: true},
		{name: "204", method: "GET", path: "/empty", wantStatus: 204, wantReusable: true},
		{name: "POST length", method: "POST", path: "/echo", framing: Framing{Kind: Length, Length: 6}, body: []string{"abc", "def"},
			wantStatus: 200, wantBody: "abcdef", wantFields: map[string]string{"x-te": "", "x-host": "test.local"}, wantReusable: true},
		{name: "POST chunked with trailers", method: "POST", path: "/echo", framing: Framing{Kind: Chunked}, body: []string{"ab", "cd"},
			trailers:   []header.Field{{Name: "x-req-sum", Value: "abcd"}},
			wantStatus: 200, wantBody: "abcd", wantFields: map[string]string{"x-te": "chunked", "x-trailer": "abcd"}, wantReusable: true},
		{name: "server closes", method: "GET", path: "/close", wantStatus: 200, wantBody: "bye", wantReusable: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := header.Map{Method: tc.method, Path: tc.path, Authority: "test.local"}
			h.Add("user-agent", "nuncio-test")
			if err := c.WriteRequestHead(&h, tc.framing); err != nil {
				t.Fatal(err)
			}
			for _, b := range tc.body {
				if err := c.WriteBody([]byte(b)); err != nil {
					t.Fatal(err)
				}
			}
			var tr header.Map
			for _, f := range tc.trailers {
				tr.Add(f.Name, f.Value)
			}
			if err := c.WriteEnd(&tr); err != nil {
				t.Fatal(err)
			}
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
			var rh header.Map
			var head ResponseHead
			if err := c.ReadResponse(&rh, &head, tc.method); err != nil {
				t.Fatal(err)
			}
			if head.Status != tc.wantStatus {
				t.Errorf("status %d, want %d", head.Status, tc.wantStatus)
			}
			for k, v := range tc.wantFields {
				if got := rh.Value(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			var body strings.Builder
			for {
				b, end, err := c.ReadBody()
				if err != nil {
					t.Fatal(err)
				}
				body.Write(b)
				if end {
					break
				}
			}
			if body.String() != tc.wantBody {
				t.Errorf("body %q, want %q", body.String(), tc.wantBody)
			}
			var trailers header.Map
			c.Trailers(&trailers)
			if got := fieldsString(&trailers); got != tc.wantTrailers {
				t.Errorf("trailers %q, want %q", got, tc.wantTrailers)
			}
			if c.Reusable() != tc.wantReusable {
				t.Errorf("Reusable = %v, want %v", c.Reusable(), tc.wantReusable)
			}
		})
	}
}

// TestServerAgainstNetHTTP serves Go's HTTP client, checking it can frame, reuse the
// connection, send trailers and wait for 100-continue the way it expects to.
func TestServerAgainstNetHTTP(t *testing.T) {
	addr := startServer(t, echo)
	tr := &http.Transport{DisableCompression: true, ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	tests := []struct {
		name         string
		method       string
		body         func() io.Reader // nil: no body
		header       http.Header
		trailer      http.Header
		wantBody     string
		wantTrailer  string
		wantTE       []string
		wantContinue bool
	}{
		{name: "GET", method: "GET", wantBody: "GET /x\n"},
		{name: "POST length", method: "POST", body: func() io.Reader { return bytes.NewReader([]byte("payload")) }, wantBody: "POST /x\npayload"},
		{name: "POST chunked with trailers", method: "POST",
			body:    func() io.Reader { return io.MultiReader(strings.NewReader("stream"), strings.NewReader("ed")) },
			trailer: http.Header{"X-Sum": {"42"}}, wantBody: "POST /x\nstreamed", wantTrailer: "42", wantTE: []string{"chunked"}},
		{name: "HEAD", method: "HEAD", wantBody: ""},
		{name: "expect continue", method: "PUT", body: func() io.Reader { return bytes.NewReader([]byte("big")) },
			header: http.Header{"Expect": {"100-continue"}}, wantBody: "PUT /x\nbig", wantContinue: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			var reused, gotContinue bool
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn:        func(info httptrace.GotConnInfo) { reused = info.Reused },
				Got100Continue: func() { gotContinue = true },
			})
			req, err := http.NewRequestWithContext(ctx, tc.method, "http://"+addr+"/x", body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req.Trailer = tc.trailer
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.wantBody {
				t.Errorf("body %q, want %q", got, tc.wantBody)
			}
			if v := resp.Trailer.Get("X-Sum"); v != tc.wantTrailer {
				t.Errorf("trailer %q, want %q", v, tc.wantTrailer)
			}
			if !equalStrings(resp.TransferEncoding, tc.wantTE) {
				t.Errorf("transfer-encoding %v, want %v", resp.TransferEncoding, tc.wantTE)
			}
			if i > 0 && !reused {
				t.Error("keep-alive connection was not reused")
			}
			if gotContinue != tc.wantContinue {
				t.Errorf("100-continue seen = %v, want %v", gotContinue, tc.wantContinue)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
