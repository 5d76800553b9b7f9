// Package pebbletest runs Let's Encrypt's pebble, a real ACME server, and its challenge test
// server as DNS resolver, on loopback for tests. The binaries are built from the module proxy
// at a pinned version, once per machine and Go version, and cached under
// os.UserCacheDir()/nuncio/pebble-<version>/<go version>/. Without a Go toolchain, or when the
// build fails, tests skip, except under CI=true, where they fail.
package pebbletest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
)

// Version is the pebble release the tests run.
const Version = "v2.10.3"

const module = "github.com/letsencrypt/pebble/v2"

// Options configure one server.
type Options struct {
	// HTTPPort and TLSPort are where pebble connects, on the address the name resolves to
	// (127.0.0.1), to validate HTTP-01 and TLS-ALPN-01 challenges.
	HTTPPort, TLSPort int
	// HTTPHandler, when set (and HTTPPort is not), is served on a listener of 127.0.0.1 that
	// becomes the HTTPPort: the HTTP-01 responder under test.
	HTTPHandler http.Handler
	// GetCertificate, when set (and TLSPort is not), answers the TLS handshakes of a listener of
	// 127.0.0.1 (offering ALPN acme-tls/1) that becomes the TLSPort: the TLS-ALPN-01 responder.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Profiles maps profile names to certificate lifetimes; default {"default": 90 days}.
	Profiles map[string]time.Duration
	// EABKeys maps external account key ids to base64url MAC keys; when set, accounts need one.
	EABKeys map[string]string
}

// Server is a running pebble and challenge test server.
type Server struct {
	// DirectoryURL is the ACME directory, https on 127.0.0.1.
	DirectoryURL string
	// HTTPClient trusts pebble's serving certificate (not its issuing root: see Roots).
	HTTPClient *http.Client

	mgmtURL  string // pebble's management API
	challURL string // the challenge test server's management API
}

// Start runs a server for the rest of t.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	pebbleBin, challBin := binaries(t)
	dir := t.TempDir()
	if o.HTTPHandler != nil && o.HTTPPort == 0 {
		o.HTTPPort = serveHTTP(t, o.HTTPHandler)
	}
	if o.GetCertificate != nil && o.TLSPort == 0 {
		o.TLSPort = serveTLS(t, o.GetCertificate)
	}

	serving := certs.SelfSigned(t, "localhost", "pebble")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, serving.CertPEM, 0o600))
	must(t, os.WriteFile(keyFile, serving.KeyPEM, 0o600))
	s := &Server{HTTPClient: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: serving.Pool()}},
	}}
	t.Cleanup(s.HTTPClient.CloseIdleConnections)

	// Ports are picked free and then bound by another process, so another test may take one
	// in between: a server that exits at start is started again on new ports.
	var dnsPort int
	startRetrying(t, dir, "challtestsrv", func() <-chan struct{} {
		var challPort int
		dnsPort, challPort = freePort(t), freePort(t)
		s.challURL = "http://" + addr(challPort)
		return startProcess(t, dir, "challtestsrv", nil, challBin,
			"-dnsserver", addr(dnsPort), "-management", addr(challPort),
			"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
			"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	}, func() bool { return answers(s.HTTPClient, s.challURL+"/") })

	profiles := map[string]any{}
	if len(o.Profiles) == 0 {
		o.Profiles = map[string]time.Duration{"default": 90 * 24 * time.Hour}
	}
	for name, d := range o.Profiles {
		profiles[name] = map[string]any{"description": name, "validityPeriod": int(d / time.Second)}
	}
	env := []string{
		"PEBBLE_VA_NOSLEEP=1",      // validate at once, not after a random pause
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce rejections
		"PEBBLE_AUTHZREUSE=0",      // every order validates its challenges
	}
	startRetrying(t, dir, "pebble", func() <-chan struct{} {
		acmePort, mgmtPort := freePort(t), freePort(t)
		s.DirectoryURL = "https://" + addr(acmePort) + "/dir"
		s.mgmtURL = "https://" + addr(mgmtPort)
		cfg := map[string]any{"pebble": map[string]any{
			"listenAddress":                  addr(acmePort),
			"managementListenAddress":        addr(mgmtPort),
			"certificate":                    certFile,
			"privateKey":                     keyFile,
			"httpPort":                       o.HTTPPort,
			"tlsPort":                        o.TLSPort,
			"externalAccountBindingRequired": len(o.EABKeys) > 0,
			"externalAccountMACKeys":         o.EABKeys,
			"retryAfter":                     map[string]int{"authz": 1, "order": 1},
			"keyAlgorithm":                   "ecdsa",
			"profiles":                       profiles,
		}}
		b, err := json.Marshal(cfg)
		must(t, err)
		cfgFile := filepath.Join(dir, "pebble-config.json")
		must(t, os.WriteFile(cfgFile, b, 0o600))
		return startProcess(t, dir, "pebble", env, pebbleBin, "-config", cfgFile, "-dnsserver", addr(dnsPort))
	}, func() bool {
		return answers(s.HTTPClient, s.DirectoryURL) && answers(s.HTTPClient, s.mgmtURL+"/roots/0")
	})
	return s
}

func serveHTTP(t testing.TB, h http.Handler) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { hs.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// serveTLS completes handshakes and closes: the CA sends nothing after a TLS-ALPN-01 one.
func serveTLS(t testing.TB, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	cfg := &tls.Config{NextProtos: []string{"acme-tls/1"}, GetCertificate: get}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = tls.Server(c, cfg).Handshake()
			})
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// startRetrying starts a server and waits until ready reports true, starting it again (up to
// three times) when it exits first.
func startRetrying(t testing.TB, dir, name string, start func() <-chan struct{}, ready func() bool) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		done := start()
		deadline := time.Now().Add(30 * time.Second)
		for !ready() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not ready after 30s\n%s", name, readLog(dir, name))
			}
			select {
			case <-done:
				if attempt == 3 {
					t.Fatalf("%s exited at start:\n%s", name, readLog(dir, name))
				}
				t.Logf("%s exited at start, starting again:\n%s", name, readLog(dir, name))
			case <-time.After(50 * time.Millisecond):
				continue
			}
			break
		}
		if ready() {
			return
		}
	}
}

// answers reports whether an HTTP server answers u with anything but a 5xx.
func answers(c *http.Client, u string) bool {
	res, err := c.Get(u)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode < 500
}

// Roots returns pebble's issuing root, from its management API. It changes on every start.
func (s *Server) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	res, err := s.HTTPClient.Get(s.mgmtURL + "/roots/0")
	must(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err)
	p := x509.NewCertPool()
	if res.StatusCode != http.StatusOK || !p.AppendCertsFromPEM(b) {
		t.Fatalf("pebble: roots/0: %s: %q", res.Status, b)
	}
	return p
}

// AddA makes host resolve to addrs instead of 127.0.0.1.
func (s *Server) AddA(t testing.TB, host string, addrs ...string) {
	t.Helper()
	s.post(t, s.challURL+"/add-a", map[string]any{"host": host, "addresses": addrs})
}

// SetRenewalInfo makes pebble's renewalInfo answer ariJSON for the certificate (PEM).
func (s *Server) SetRenewalInfo(t testing.TB, certPEM []byte, ariJSON string) {
	t.Helper()
	s.post(t, s.mgmtURL+"/set-renewal-info/", map[string]any{"certificate": string(certPEM), "ariResponse": ariJSON})
}

func (s *Server) post(t testing.TB, u string, body any) {
	t.Helper()
	b, err := json.Marshal(body)
	must(t, err)
	res, err := s.HTTPClient.Post(u, "application/json", bytes.NewReader(b))
	must(t, err)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(res.Body)
		t.Fatalf("POST %s: %s: %s", u, res.Status, msg)
	}
}

// LeafPEM encodes a DER certificate, for SetRenewalInfo.
func LeafPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// startProcess runs a binary with its output in dir/<name>.log, killed when t ends (or when
// the test process dies: Pdeathsig). The channel closes when it exits.
func startProcess(t testing.TB, dir, name string, env []string, bin string, args ...string) <-chan struct{} {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	must(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("%s log:\n%s", name, readLog(dir, name))
		}
	})
	return done
}

func readLog(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries returns the paths of pebble and pebble-challtestsrv, building them when missing.
func binaries(t testing.TB) (pebble, chall string) {
	t.Helper()
	buildOnce.Do(func() { buildDir, buildErr = build() })
	if buildErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pebbletest: %v", buildErr)
		}
		t.Skipf("pebbletest: %v", buildErr)
	}
	return filepath.Join(buildDir, "pebble"), filepath.Join(buildDir, "pebble-challtestsrv")
}

// build installs both commands into the cache, once per machine: concurrent test processes
// wait on a lock file for the first one's build.
func build() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command to build pebble %s: %v", Version, err)
	}
	out, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %v", err)
	}
	goVersion := strings.TrimSpace(string(out))
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "nuncio", "pebble-"+Version, goVersion)
	if haveBinaries(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	if haveBinaries(dir) {
		return dir, nil
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goBin, "install", "-trimpath",
		module+"/cmd/pebble@"+Version, module+"/cmd/pebble-challtestsrv@"+Version)
	cmd.Dir = tmp // outside any module: @version installs ignore the caller's go.mod
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "CGO_ENABLED=0", "GOWORK=off", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building pebble %s with %s: %v\n%s", Version, goVersion, err, out)
	}
	for _, b := range []string{"pebble-challtestsrv", "pebble"} { // pebble last: haveBinaries checks it
		if err := os.Rename(filepath.Join(tmp, b), filepath.Join(dir, b)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func haveBinaries(dir string) bool {
	for _, b := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

// freePort returns a loopback port nothing listens on at the moment (TCP and UDP, since the
// DNS server takes both).
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", addr(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
