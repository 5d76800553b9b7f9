package loopback_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
)

func TestEchoServers(t *testing.T) {
	ca := certs.CA(t, "loopback test CA")
	server := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	tests := []struct {
		name      string
		start     func(t *testing.T, h http.Handler) string
		scheme    string
		transport func() *http.Transport
		wantProto string
	}{
		{
			name:      "HTTP/1.1",
			start:     func(t *testing.T, h http.Handler) string { return loopback.HTTP(t, h) },
			scheme:    "http",
			transport: func() *http.Transport { return &http.Transport{} },
			wantProto: "HTTP/1.1",
		},
		{
			name:   "h2c",
			start:  func(t *testing.T, h http.Handler) string { return loopback.H2C(t, h) },
			scheme: "http",
			transport: func() *http.Transport {
				var p http.Protocols
				p.SetUnencryptedHTTP2(true)
				return &http.Transport{Protocols: &p}
			},
			wantProto: "HTTP/2.0",
		},
		{
			name: "HTTP/1.1 over TLS",
			start: func(t *testing.T, h http.Handler) string {
				return loopback.HTTPServer(t, &http.Server{Handler: h}, &tls.Config{Certificates: []tls.Certificate{server.TLS()}})
			},
			scheme:    "https",
			transport: func() *http.Transport { return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}} },
			wantProto: "HTTP/1.1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			echo := &loopback.Echo{Name: "backend"}
			addr := tc.start(t, echo)
			tr := tc.transport()
			t.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			req, _ := http.NewRequest("POST", tc.scheme+"://"+addr+"/p?q=1", strings.NewReader("hello"))
			req.Header.Set("x-test", "1")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got, err := loopback.DecodeEcho(body)
			if err != nil {
				t.Fatal(err)
			}
			if got.Server != "backend" || got.Method != "POST" || got.Path != "/p?q=1" || got.Proto != tc.wantProto ||
				got.Body != "hello" || got.Header.Get("x-test") != "1" || resp.Header.Get("x-upstream") != "backend" {
				t.Errorf("answer %+v, x-upstream %q", got, resp.Header.Get("x-upstream"))
			}
			if recorded := echo.Requests(); len(recorded) != 1 || recorded[0].Body != "hello" {
				t.Errorf("recorded %+v", recorded)
			}
		})
	}
}

// Serve's cleanup ends a handler blocked reading from a client that stays connected, and
// cancels the context of one that waits on it.
func TestServeCleanupEndsHandlers(t *testing.T) {
	tests := []struct {
		name   string
		handle func(ctx context.Context, c net.Conn)
	}{
		{
			name: "blocked reading",
			handle: func(_ context.Context, c net.Conn) {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprint(c, line)
				}
			},
		},
		{
			name: "waiting on the context",
			handle: func(ctx context.Context, c net.Conn) {
				fmt.Fprintln(c, "hi")
				<-ctx.Done()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			// The client is closed after Serve's cleanup (cleanups run last registered
			// first), so that cleanup must end the handler itself.
			var c net.Conn
			t.Cleanup(func() {
				if c != nil {
					c.Close()
				}
			})
			addr := loopback.Serve(t, tc.handle)
			var err error
			if c, err = net.Dial("tcp", addr); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(c, "hi")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hi\n" {
				t.Fatalf("read %q, %v", line, err)
			}
		})
	}
}

func TestPair(t *testing.T) {
	leak.Check(t)
	client, server := loopback.Pair(t)
	go fmt.Fprintln(client, "ping")
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(server).ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if client.LocalAddr().String() != server.RemoteAddr().String() {
		t.Errorf("ends of different connections: %v, %v", client.LocalAddr(), server.RemoteAddr())
	}
}

func TestFixed(t *testing.T) {
	leak.Check(t)
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	addr := loopback.Fixed(t, []byte(answer))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 3 { // on one kept-alive connection
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}
