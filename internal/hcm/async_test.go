package hcm

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// asyncWait bounds every wait of these tests; it is a deadline for a hung test, not a
// measurement.
const asyncWait = 10 * time.Second

// authService is a real loopback HTTP server standing in for an ext_authz service: it answers
// "allowed" only when the test releases it, and reports a call its client gave up.
type authService struct {
	srv       *httptest.Server
	arrived   chan struct{} // a call came in
	release   chan struct{} // closed to let calls answer
	abandoned chan struct{} // a caller went away before the answer
}

func newAuthService(t *testing.T) *authService {
	a := &authService{arrived: make(chan struct{}, 4), release: make(chan struct{}), abandoned: make(chan struct{}, 4)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.arrived <- struct{}{}
		select {
		case <-a.release:
			io.WriteString(w, "allowed")
		case <-r.Context().Done():
			a.abandoned <- struct{}{}
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// authConfig makes authFilters, which call the service from OnRequestHeaders and block in the
// stream's goroutine, as the filter contract asks of asynchronous filters.
type authConfig struct {
	url      string
	client   *http.Client
	returned chan error // what each call ended with, once the filter returns
}

func (*authConfig) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

func (c *authConfig) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return &authFilter{cfg: c}
}

type authFilter struct {
	httpfilter.PassThrough
	cfg *authConfig
}

func (f *authFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	req, err := http.NewRequestWithContext(s.Ctx, "GET", f.cfg.url, nil)
	if err != nil {
		panic(err)
	}
	resp, err := f.cfg.client.Do(req)
	if err != nil {
		// Cancelled: the client is gone, so there is nobody to answer.
		f.cfg.returned <- err
		return httpfilter.Stop
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	f.cfg.returned <- err
	if err != nil {
		return httpfilter.Stop
	}
	h.Set("x-auth", string(b))
	return httpfilter.Continue
}

// upstreamFilter stands in for the router: it counts the requests that reach it and answers
// with the x-auth the filter before it set.
type upstreamFilter struct {
	httpfilter.PassThrough
	calls atomic.Int32
}

func (*upstreamFilter) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

func (u *upstreamFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return u
}

func (u *upstreamFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	u.calls.Add(1)
	s.Response.Status = 200
	s.Response.Set("x-auth", h.Value("x-auth"))
	s.Response.Set("content-length", "0")
	s.EncodeHeaders(true)
	return httpfilter.Stop
}

// testClient is one client connection of the test, HTTP/1.1 or HTTP/2 (h2c), sending one GET.
type testClient interface {
	send(t *testing.T)
	response(t *testing.T) *http.Response
	close()
}

type h1Client struct {
	c net.Conn
	r *bufio.Reader
}

func (d *h1Client) send(t *testing.T) {
	if _, err := io.WriteString(d.c, "GET /auth HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

func (d *h1Client) response(t *testing.T) *http.Response {
	d.c.SetReadDeadline(time.Now().Add(asyncWait))
	resp, err := http.ReadResponse(d.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (d *h1Client) close() { d.c.Close() }

type h2Client struct {
	c    net.Conn
	cc   *http2.ClientConn
	resp chan *http.Response
	got  bool // the round trip's result was taken
}

func (d *h2Client) send(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://h/auth", nil)
	go func() {
		resp, err := d.cc.RoundTrip(req)
		if err != nil {
			resp = nil
		}
		d.resp <- resp
	}()
}

func (d *h2Client) response(t *testing.T) *http.Response {
	select {
	case resp := <-d.resp:
		d.got = true
		if resp == nil {
			t.Fatal("no response")
		}
		return resp
	case <-time.After(asyncWait):
		t.Fatal("no response")
	}
	return nil
}

func (d *h2Client) close() {
	d.c.Close()
	if !d.got {
		<-d.resp // the round trip fails now that its connection is gone
	}
}

func dial(t *testing.T, addr string, h2 bool) testClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !h2 {
		return &h1Client{c: c, r: bufio.NewReader(c)}
	}
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(context.Context, string, string, *tls.Config) (net.Conn, error) {
		return nil, errors.New("unused")
	}}
	cc, err := tr.NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	return &h2Client{c: c, cc: cc, resp: make(chan *http.Response, 1)}
}

// TestAsyncFilter runs a filter that waits on a real loopback server in its stream's
// goroutine. The request completes with the server's answer; and when the client closes its
// connection while the filter waits, the stream's context is cancelled, the filter returns,
// the stand-in for the router is never called and no goroutine is left behind.
func TestAsyncFilter(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h2         bool
		clientGone bool
	}{
		{name: "http1 answer", h2: false},
		{name: "http1 client gone", h2: false, clientGone: true},
		{name: "http2 answer", h2: true},
		{name: "http2 client gone", h2: true, clientGone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := newAuthService(t)
			tr := &http.Transport{DisableKeepAlives: true}
			t.Cleanup(tr.CloseIdleConnections)
			ac := &authConfig{url: auth.srv.URL, client: &http.Client{Transport: tr}, returned: make(chan error, 4)}
			up := &upstreamFilter{}
			m := defaultHCM()
			m.HTTPFilters = []model.HTTPFilter{{Name: "auth", Config: ac}, {Name: "upstream", Config: up}}
			addr := testHCM(t, m, nil)

			before := runtime.NumGoroutine()
			d := dial(t, addr, tc.h2)
			d.send(t)
			awaitClosed(t, auth.arrived, "the filter's call to reach the service")
			if !tc.clientGone {
				close(auth.release)
				resp := d.response(t)
				resp.Body.Close()
				d.close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Auth") != "allowed" {
					t.Fatalf("response %d x-auth %q, want 200 allowed", resp.StatusCode, resp.Header.Get("X-Auth"))
				}
				if err := <-ac.returned; err != nil {
					t.Fatalf("filter's call: %v", err)
				}
				if n := up.calls.Load(); n != 1 {
					t.Fatalf("router stand-in called %d times, want 1", n)
				}
				return
			}
			d.close()
			select {
			case err := <-ac.returned:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("filter's call ended with %v, want context.Canceled", err)
				}
			case <-time.After(asyncWait):
				t.Fatal("the filter still waits after its client left")
			}
			awaitClosed(t, auth.abandoned, "the service to see its caller leave")
			if n := up.calls.Load(); n != 0 {
				t.Fatalf("router stand-in called %d times after the client left", n)
			}
			tr.CloseIdleConnections()
			deadline := time.Now().Add(asyncWait)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines before the request, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func awaitClosed(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(asyncWait):
		t.Fatalf("timed out waiting for %s", what)
	}
}
