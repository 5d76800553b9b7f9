package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// issue returns a server certificate for names, or a client certificate named cn, signed by
// ca, in the form the model carries.
func issue(t testing.TB, ca *certs.Cert, cn string, names []string, client bool) model.Certificate {
	t.Helper()
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	c := ca.Issue(t, cn, usage, names...)
	return model.Certificate{CertChainPEM: c.CertPEM, PrivateKeyPEM: c.KeyPEM}
}

func tlsCert(t testing.TB, c model.Certificate) tls.Certificate {
	t.Helper()
	kp, err := tls.X509KeyPair(c.CertChainPEM, c.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// testHandler greets with "name|transport|sni|alpn|peercerts" and then serves line commands:
// "who" answers the name, "busy" starts a request, "done" finishes it. While draining it
// returns at once when idle, or after the request in flight finishes.
type testHandler struct {
	name   string
	served chan ConnInfo // optional
}

func (h *testHandler) ServeConn(ctx context.Context, c net.Conn, info ConnInfo) {
	if h.served != nil {
		select {
		case h.served <- info:
		default:
		}
	}
	peers := 0
	if info.TLS != nil {
		peers = len(info.TLS.PeerCertificates)
	}
	if _, err := fmt.Fprintf(c, "%s|%s|%s|%s|%d\n", h.name, info.TransportProtocol, info.SNI, info.ALPN, peers); err != nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()
	busy, draining := false, info.Draining
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return
			}
			switch line {
			case "who":
				fmt.Fprintln(c, h.name)
			case "busy":
				busy = true
				fmt.Fprintln(c, "busy")
			case "done":
				busy = false
				fmt.Fprintln(c, "ok")
				if draining == nil {
					return
				}
			}
		case <-draining:
			draining = nil
			if !busy {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

func handlerFor(h map[string]ChainHandler) func(fc *model.FilterChain) (ChainHandler, error) {
	return func(fc *model.FilterChain) (ChainHandler, error) {
		if x, ok := h[fc.Name]; ok {
			return x, nil
		}
		return &testHandler{name: fc.Name}, nil
	}
}

// byName names each chain's handler after the chain.
func byName(fc *model.FilterChain) (ChainHandler, error) { return &testHandler{name: fc.Name}, nil }

func mustCompile(t testing.TB, l *model.Listener, h func(*model.FilterChain) (ChainHandler, error)) *Compiled {
	t.Helper()
	if h == nil {
		h = byName
	}
	cc, err := Compile(l, h)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func loopback(port uint32) model.SocketAddress {
	return model.SocketAddress{Host: "127.0.0.1", Port: port}
}

func newTestManager(t testing.TB, opts Options) *Manager {
	t.Helper()
	m := NewManager(opts)
	t.Cleanup(m.Close)
	return m
}

// applyPlain gives m one plain listener "p", chain "p", on a free loopback port.
func applyPlain(t testing.TB, m *Manager) {
	t.Helper()
	if err := m.Apply([]*Compiled{mustCompile(t, plainListener("p", loopback(0), "p"), nil)}); err != nil {
		t.Fatal(err)
	}
}

// busyPlain applies listener "p" (applyPlain) and returns a connection to it whose
// request is still in flight, so only a forced close can end it.
func busyPlain(t testing.TB, m *Manager) *client {
	t.Helper()
	applyPlain(t, m)
	c := dialPlain(t, addrOf(t, m, "p"))
	c.greeting()
	c.send(t, "busy")
	c.line()
	return c
}

func addrOf(t testing.TB, m *Manager, name string) string {
	t.Helper()
	for _, s := range m.Listeners() {
		if s.Name == name && !s.Draining {
			return s.Address.String()
		}
	}
	t.Fatalf("listener %q not running", name)
	return ""
}

func statusOf(m *Manager, name string, draining bool) (Status, bool) {
	for _, s := range m.Listeners() {
		if s.Name == name && s.Draining == draining {
			return s, true
		}
	}
	return Status{}, false
}

// client is a test connection with a line reader.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dialPlain(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*client, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}, nil
}

// line reads one line, or returns the read error ("" and io.EOF when the server closed).
func (c *client) line() (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(s, "\n"), nil
}

func (c *client) send(t testing.TB, s string) {
	t.Helper()
	if _, err := fmt.Fprintln(c, s); err != nil {
		t.Fatal(err)
	}
}

// greeting reads the handler's greeting and returns the chain name, or "" if closed.
func (c *client) greeting() (name string, fields []string) {
	s, err := c.line()
	if err != nil {
		return "", nil
	}
	f := strings.Split(s, "|")
	return f[0], f
}

// expectClosed asserts that the server closes c without sending anything.
func (c *client) expectClosed(t testing.TB) {
	t.Helper()
	if s, err := c.line(); err == nil {
		t.Fatalf("connection open, read %q", s)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection not closed: %v", err)
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func hasIPv6(t testing.TB) bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func tlsCipherName(id uint16) string { return tls.CipherSuiteName(id) }

type contextT = context.Context

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func m2port(t testing.TB, addr string) uint32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return uint32(n)
}
