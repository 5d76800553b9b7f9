// Package loopback runs real servers on 127.0.0.1 for tests: connected TCP pairs, a raw TCP
// listener that hands each connection to a function, a fixed-answer HTTP/1.1 upstream for
// benchmarks, HTTP/1.1 and h2c (HTTP/2 with prior knowledge) servers, and an echo handler
// that records what it received. Each runs until its test ends; the cleanup closes the
// listener and every open connection and waits for the server's goroutines, so tests using
// package leak see none of them left.
package loopback

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
)

// Listen returns a TCP listener on a free port of 127.0.0.1, closed when the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Pair returns the two ends of a TCP connection on 127.0.0.1, for tests of code that reads
// and writes a real socket; both are closed when the test ends.
func Pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln := Listen(t)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	ln.Close()
	return client, server
}

// Serve accepts connections on a free port of 127.0.0.1 and runs handle on each in a
// goroutine of its own until the test ends, and returns the address. See ServeListener.
func Serve(t testing.TB, handle func(ctx context.Context, c net.Conn)) string {
	t.Helper()
	return ServeListener(t, Listen(t), handle)
}

// ServeListener runs handle on each connection ln accepts, in a goroutine of its own, until
// the test ends, and returns ln's address. At the end ctx is cancelled, ln and every
// connection still open are closed (ending reads blocked in handle), and the cleanup waits
// for handle to return. Connections are closed after handle returns, so handle need not.
func ServeListener(t testing.TB, ln net.Listener, handle func(ctx context.Context, c net.Conn)) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				handle(ctx, c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Fixed answers every request on each connection with response, written as is, without
// net/http, so that a benchmark measures the proxy rather than its upstream. Requests must
// have no body: a request's head ends at its first empty line. It returns the address.
func Fixed(t testing.TB, response []byte) string {
	t.Helper()
	return Serve(t, func(_ context.Context, c net.Conn) {
		br := bufio.NewReader(c)
		for {
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(response); err != nil {
				return
			}
		}
	})
}

// HTTP serves h over HTTP/1.1 on a free port of 127.0.0.1 until the test ends, and returns
// the address.
func HTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	return HTTPServer(t, &http.Server{Handler: h}, nil)
}

// H2C serves h over HTTP/2 with prior knowledge, and HTTP/1.1, on a free port of 127.0.0.1
// until the test ends, and returns the address.
func H2C(t testing.TB, h http.Handler) string {
	t.Helper()
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return HTTPServer(t, &http.Server{Handler: h, Protocols: &p}, nil)
}

// HTTPServer runs srv on a free port of 127.0.0.1, over TLS when cfg is not nil, until the
// test ends, and returns the address. Its error log is discarded unless srv sets one:
// tests provoke broken connections on purpose.
func HTTPServer(t testing.TB, srv *http.Server, cfg *tls.Config) string {
	t.Helper()
	ln := Listen(t)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	if srv.ErrorLog == nil {
		srv.ErrorLog = log.New(io.Discard, "", 0)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}
