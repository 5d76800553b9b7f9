package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// checkGoroutines fails the test if goroutines started during it are still running once all
// other cleanups have run. Register it first: cleanups run last-in first-out.
func checkGoroutines(t *testing.T) {
	t.Helper()
	leak.Check(t)
}

// lineServer is a TCP (or TLS) server answering each "ping\n" line with "pong\n".
type lineServer struct {
	ln       net.Listener
	accepted atomic.Int32
	closed   atomic.Int32 // connections the server has closed
	// closeAfterReply makes the server close each connection after its first reply, as an
	// HTTP server closing an idle keep-alive connection would.
	closeAfterReply atomic.Bool

	mu    sync.Mutex
	peers []*tls.ConnectionState
}

func newLineServer(t testing.TB, cfg *tls.Config) *lineServer {
	t.Helper()
	ln := loopback.Listen(t)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s := &lineServer{ln: ln}
	loopback.ServeListener(t, ln, func(_ context.Context, c net.Conn) {
		s.accepted.Add(1)
		s.handle(c)
	})
	return s
}

func (s *lineServer) addr() string { return s.ln.Addr().String() }

func (s *lineServer) handle(c net.Conn) {
	defer s.closed.Add(1)
	defer c.Close()
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return
		}
		cs := tc.ConnectionState()
		s.mu.Lock()
		s.peers = append(s.peers, &cs)
		s.mu.Unlock()
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if line != "ping\n" {
			return
		}
		if _, err := c.Write([]byte("pong\n")); err != nil {
			return
		}
		if s.closeAfterReply.Load() {
			return
		}
	}
}

// ping sends one request on c and reads the reply.
func ping(t *testing.T, c net.Conn) {
	t.Helper()
	if err := tryPing(c); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

func tryPing(c net.Conn) error {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	var buf [5]byte
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
	}
	if string(buf[:]) != "pong\n" {
		return errUnexpected(string(buf[:]))
	}
	return nil
}

type errUnexpected string

func (e errUnexpected) Error() string { return "unexpected reply " + string(e) }

// pki is a test certificate authority with leaf certificates signed by it.
type pki struct {
	ca      *certs.Cert
	cert    *x509.Certificate
	certPEM []byte
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	ca := certs.CA(t, name)
	return &pki{ca: ca, cert: ca.Cert, certPEM: ca.CertPEM}
}

// leaf issues a certificate for the given DNS names (and 127.0.0.1), returning PEM cert
// and key and the parsed tls.Certificate.
func (p *pki) leaf(t *testing.T, cn string, usage x509.ExtKeyUsage, dns ...string) (certPEM, keyPEM []byte, cert tls.Certificate) {
	t.Helper()
	c := p.ca.Issue(t, cn, usage, append([]string{"127.0.0.1"}, dns...)...)
	return c.CertPEM, c.KeyPEM, c.TLS()
}

// waitFor polls cond until it holds or the bounded wait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	wait.For(t, what, cond)
}
