package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// h2Server is an HTTP/2 server (h2c, or h2 over TLS when given a config) that records the
// connections requests arrive on and the peak number of concurrent requests.
type h2Server struct {
	srv      *http.Server
	addr     string
	inFlight atomic.Int32
	peak     atomic.Int32
	hold     chan struct{} // when non-nil, handlers wait on it before answering

	mu      sync.Mutex
	remotes map[string]int
}

func newH2Server(t *testing.T, cfg *tls.Config, maxStreams uint32) *h2Server {
	t.Helper()
	s := &h2Server{remotes: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for {
			p := s.peak.Load()
			if n <= p || s.peak.CompareAndSwap(p, n) {
				break
			}
		}
		s.mu.Lock()
		s.remotes[r.RemoteAddr]++
		hold := s.hold
		s.mu.Unlock()
		if hold != nil {
			<-hold
		}
		w.Header().Set("X-Proto", r.Proto)
		io.WriteString(w, "hello "+r.URL.Path)
	})
	h2s := &http2.Server{MaxConcurrentStreams: maxStreams}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	if cfg == nil {
		s.srv = &http.Server{Handler: h2c.NewHandler(h, h2s)}
	} else {
		s.srv = &http.Server{Handler: h, TLSConfig: cfg}
		if err := http2.ConfigureServer(s.srv, h2s); err != nil {
			t.Fatal(err)
		}
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

func (s *h2Server) conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.remotes)
}

func get(t *testing.T, p *Pool, scheme, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", scheme+"://upstream.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.RoundTripH2(req)
	if err != nil {
		t.Fatalf("RoundTripH2: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestH2CRoundTrip(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 0)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2})
	defer p.Close()
	for i := range 3 {
		resp, body := get(t, p, "http", "/x")
		if resp.ProtoMajor != 2 || resp.Header.Get("X-Proto") != "HTTP/2.0" {
			t.Fatalf("request %d: proto %s, server saw %s", i, resp.Proto, resp.Header.Get("X-Proto"))
		}
		if body != "hello /x" {
			t.Fatalf("body = %q", body)
		}
	}
	if srv.conns() != 1 {
		t.Errorf("server saw %d connections, want 1", srv.conns())
	}
	if st := p.Stats(); st.Connects != 1 || st.Reuses != 2 || st.Idle != 1 {
		t.Errorf("stats = %+v", st)
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, ErrProtocol) {
		t.Errorf("Get on an HTTP/2 pool: %v", err)
	}
}

// concurrent runs n requests at once, all held in the handler until every one arrived.
// With staggered set, each request starts only once the previous one reached the handler
// (plus a pause for the client to read the server's SETTINGS), so a new connection's
// stream limit is known before it is used; without it, all start together.
func concurrent(t *testing.T, srv *h2Server, p *Pool, n int, staggered bool) {
	t.Helper()
	hold := make(chan struct{})
	srv.mu.Lock()
	srv.hold = hold
	srv.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", "http://upstream.test/c", nil)
			resp, err := p.RoundTripH2(req)
			if err != nil {
				errs <- err
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				errs <- err
			}
		})
		if staggered {
			waitFor(t, "request in the handler", func() bool { return srv.inFlight.Load() == int32(i+1) })
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(t, "all requests in the handler", func() bool { return srv.inFlight.Load() == int32(n) })
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestH2CConcurrentStreamsShareConnection(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 100)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2})
	defer p.Close()
	concurrent(t, srv, p, 20, false)
	if srv.conns() != 1 {
		t.Errorf("server saw %d connections, want 1", srv.conns())
	}
	if srv.peak.Load() != 20 {
		t.Errorf("peak concurrency %d, want 20", srv.peak.Load())
	}
}

func TestH2CMaxConcurrentStreamsOpensMoreConnections(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 100)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2, HTTP2: model.HTTP2Options{MaxConcurrentStreams: 5}})
	defer p.Close()
	concurrent(t, srv, p, 20, false)
	if srv.conns() != 4 {
		t.Errorf("server saw %d connections, want 4 (5 streams each)", srv.conns())
	}
}

func TestH2CServerStreamLimitOpensMoreConnections(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 4)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2})
	defer p.Close()
	concurrent(t, srv, p, 12, true)
	if srv.conns() != 3 {
		t.Errorf("server saw %d connections, want 3 (4 streams each)", srv.conns())
	}
}

func TestH2Overflow(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 100)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2, MaxConnections: 1, HTTP2: model.HTTP2Options{MaxConcurrentStreams: 1}})
	defer p.Close()
	hold := make(chan struct{})
	srv.mu.Lock()
	srv.hold = hold
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", "http://upstream.test/a", nil)
		if resp, err := p.RoundTripH2(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	waitFor(t, "first request", func() bool { return srv.inFlight.Load() == 1 })
	req, _ := http.NewRequest("GET", "http://upstream.test/b", nil)
	if _, err := p.RoundTripH2(req); !errors.Is(err, ErrOverflow) {
		t.Errorf("err = %v, want ErrOverflow", err)
	}
	close(hold)
	<-done
}

func TestH2ConnectFailed(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := NewPool(addr, PoolOptions{Protocol: HTTP2})
	defer p.Close()
	req, _ := http.NewRequest("GET", "http://upstream.test/", nil)
	if _, err := p.RoundTripH2(req); !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("err = %v, want ErrConnectFailed", err)
	}
	if st := p.Stats(); st.Open != 0 || st.ConnectFailures != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestH2OverTLS(t *testing.T) {
	checkGoroutines(t)
	ca := newPKI(t, "test ca")
	_, _, serverCert := ca.leaf(t, "server", x509.ExtKeyUsageServerAuth, "upstream.test")
	srv := newH2Server(t, &tls.Config{Certificates: []tls.Certificate{serverCert}}, 0)
	cfg, err := BuildTLS(&model.UpstreamTLS{SNI: "upstream.test", TrustedCAPEM: ca.certPEM})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2, TLS: cfg})
	defer p.Close()
	for range 2 {
		resp, body := get(t, p, "https", "/tls")
		if resp.ProtoMajor != 2 || body != "hello /tls" {
			t.Fatalf("proto %s body %q", resp.Proto, body)
		}
	}
	if srv.conns() != 1 {
		t.Errorf("server saw %d connections, want 1", srv.conns())
	}
}

func TestH2OverTLSWithoutALPN(t *testing.T) {
	checkGoroutines(t)
	ca := newPKI(t, "test ca")
	_, _, serverCert := ca.leaf(t, "server", x509.ExtKeyUsageServerAuth, "upstream.test")
	// A TLS server that only speaks HTTP/1.1.
	srv := newLineServer(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, NextProtos: []string{"http/1.1"}})
	cfg, _ := BuildTLS(&model.UpstreamTLS{TrustedCAPEM: ca.certPEM})
	p := NewPool(srv.addr(), PoolOptions{Protocol: HTTP2, TLS: cfg})
	defer p.Close()
	req, _ := http.NewRequest("GET", "https://upstream.test/", nil)
	if _, err := p.RoundTripH2(req); !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("err = %v, want ErrConnectFailed", err)
	}
	if st := p.Stats(); st.Open != 0 {
		t.Errorf("open = %d", st.Open)
	}
}

func TestH2CloseDrainsStreams(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 100)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2})
	hold := make(chan struct{})
	srv.mu.Lock()
	srv.hold = hold
	srv.mu.Unlock()
	result := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://upstream.test/slow", nil)
		resp, err := p.RoundTripH2(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		result <- err
	}()
	waitFor(t, "request in flight", func() bool { return srv.inFlight.Load() == 1 })
	p.Close()
	req, _ := http.NewRequest("GET", "http://upstream.test/", nil)
	if _, err := p.RoundTripH2(req); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("RoundTripH2 after Close: %v", err)
	}
	close(hold)
	if err := <-result; err != nil {
		t.Errorf("in-flight stream failed on Close: %v", err)
	}
	waitFor(t, "connection closed", func() bool { return p.Stats().Open == 0 })
}

func TestH2IdleTimeout(t *testing.T) {
	checkGoroutines(t)
	srv := newH2Server(t, nil, 0)
	p := NewPool(srv.addr, PoolOptions{Protocol: HTTP2, IdleTimeout: 50 * time.Millisecond})
	defer p.Close()
	get(t, p, "http", "/")
	waitFor(t, "idle connection closed", func() bool { return p.Stats().Open == 0 })
	get(t, p, "http", "/")
	if st := p.Stats(); st.Connects != 2 {
		t.Errorf("connects = %d, want 2", st.Connects)
	}
}

func BenchmarkH2CRoundTrip(b *testing.B) {
	srv := newH2ServerTB(b)
	p := NewPool(srv, PoolOptions{Protocol: HTTP2})
	defer p.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", "http://upstream.test/", nil)
			resp, err := p.RoundTripH2(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func newH2ServerTB(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
