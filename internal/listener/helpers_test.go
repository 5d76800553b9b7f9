package listener

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// testPKI is a CA that issues ECDSA certificates for tests.
type testPKI struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	pem   []byte
	pool  *x509.CertPool
	nextN int64
}

func newPKI(t testing.TB, cn string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &testPKI{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: x509.NewCertPool(), nextN: 1}
	p.pool.AddCert(cert)
	return p
}

// issue returns a leaf for names (server) or a client certificate named cn.
func (p *testPKI) issue(t testing.TB, cn string, names []string, client bool) model.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.nextN++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.nextN),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return model.Certificate{
		CertChainPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		PrivateKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
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

// checkGoroutines fails the test if goroutines started during it are still running at its end
// (after cleanups registered later, such as Manager.Close, have run).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines leaked: %d before, %d after\n%s", before, n, buf)
		}
	})
}

// eventually polls cond until it holds or a bounded wait passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
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
