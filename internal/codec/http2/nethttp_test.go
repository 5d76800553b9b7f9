package http2

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// TestNetHTTPClient runs golang.org/x/net/http2's client against the server.
func TestNetHTTPClient(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{})
	client := h2cClient()
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB: several windows
	tests := []struct {
		name     string
		method   string
		body     []byte
		trailer  http.Header
		wantBody []byte
	}{
		{name: "get", method: "GET", wantBody: []byte("hello")},
		{name: "post", method: "POST", body: []byte("ping"), wantBody: []byte("ping")},
		{name: "large body", method: "PUT", body: big, wantBody: big},
		{name: "trailers", method: "POST", body: []byte("t"), trailer: http.Header{"X-Sum": {"42"}}, wantBody: []byte("t")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			}
			req, err := http.NewRequest(tc.method, "http://"+ts.addr+"/x", body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.trailer != nil {
				req.Trailer = tc.trailer
				req.Body = io.NopCloser(bytes.NewReader(tc.body))
				req.ContentLength = -1
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Method") != tc.method {
				t.Fatalf("status %d, x-method %q", resp.StatusCode, resp.Header.Get("X-Method"))
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Fatalf("body of %d bytes, want %d", len(got), len(tc.wantBody))
			}
			for k, v := range tc.trailer {
				if resp.Trailer.Get(k) != v[0] {
					t.Fatalf("trailer %s = %q, want %q", k, resp.Trailer.Get(k), v[0])
				}
			}
		})
	}
}

// TestNetHTTPClientConcurrent runs many streams at once over one connection.
func TestNetHTTPClientConcurrent(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{})
	client := h2cClient()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := fmt.Sprintf("req-%d-%s", i, strings.Repeat("x", i*1000))
			resp, err := client.Post("http://"+ts.addr+"/", "text/plain", strings.NewReader(want))
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != want {
				errs <- fmt.Errorf("request %d: %v, %d bytes", i, err, len(got))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(ts.conns); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestTLS serves h2 over TLS (ALPN) to net/http's client.
func TestTLS(t *testing.T) {
	cert := certs.SelfSigned(t, "example.com")
	ts := newTestServer(t, Config{}, &testHandler{}, func(ts *testServer) {
		ts.tls = &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, NextProtos: []string{"h2"}}
	})
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: cert.Pool(), ServerName: "example.com"},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, err := (&http.Client{Transport: tr}).Post("https://"+ts.addr+"/", "text/plain", strings.NewReader("over tls"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(b) != "over tls" {
			t.Fatalf("%s %q", resp.Proto, b)
		}
	}
}
