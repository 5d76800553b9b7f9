// Package e2e tests the nuncio binary as users run it: the real executable, real config
// files, real HTTP/1.1, HTTP/2, TLS and WebSocket peers, all on loopback.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/certs"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nuncio-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "nuncio")
	build := exec.Command("go", "build", "-o", binPath, "../../cmd/nuncio")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building nuncio:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxy is one running nuncio process.
type proxy struct {
	t       testing.TB
	cmd     *exec.Cmd
	dir     string
	cfgPath string
	admin   int
	ports   map[string]int
	log     *syncBuffer
	exited  chan struct{}
	exitErr error
}

// vars is what config templates can refer to.
type vars struct {
	p    *proxy
	Dir  string
	Data map[string]any
}

// Port returns (allocating on first use) the port named name.
func (v vars) Port(name string) int {
	if p, ok := v.p.ports[name]; ok {
		return p
	}
	p := freePort(v.p.t)
	v.p.ports[name] = p
	return p
}

// Admin is the admin port.
func (v vars) Admin() int { return v.p.admin }

// configParts are the pieces of Envoy YAML that most configs repeat. {{template "hcm"}} is
// an HTTP connection manager entry at a filter chain's filters (its settings follow at the
// same indentation), {{template "router"}} ends its settings with the router as the only
// HTTP filter, and {{staticCluster name port}} is a STATIC cluster with one loopback
// endpoint, at the indentation of an entry of clusters.
const configParts = `
{{- define "hcm"}}      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
{{- end}}
{{- define "router"}}          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
{{- end}}`

var configFuncs = template.FuncMap{
	"staticCluster": func(name string, port int) string {
		return fmt.Sprintf(`  - name: %[1]s
    type: STATIC
    load_assignment:
      cluster_name: %[1]s
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]d}}}}]}]`, name, port)
	},
}

func (p *proxy) render(cfg string, data map[string]any) string {
	tpl := template.Must(template.New("cfg").Option("missingkey=error").Funcs(configFuncs).Parse(configParts))
	tpl = template.Must(tpl.Parse(cfg))
	var b bytes.Buffer
	if err := tpl.Execute(&b, vars{p: p, Dir: p.dir, Data: data}); err != nil {
		p.t.Fatalf("config template: %v", err)
	}
	return b.String()
}

// startProxy writes cfg (a text/template over vars) to a file and runs nuncio on it, waiting
// until the admin API reports ready.
func startProxy(t testing.TB, cfg string, data map[string]any, extraArgs ...string) *proxy {
	t.Helper()
	p := newProxy(t, freePort(t))
	p.cfgPath = filepath.Join(p.dir, "config.yaml")
	if err := os.WriteFile(p.cfgPath, []byte(p.render(cfg, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(append([]string{"run", "-c", p.cfgPath, "--admin", "127.0.0.1:" + strconv.Itoa(p.admin), "--drain-time", "5s", "--log-level", "debug"}, extraArgs...)...)
	p.waitReady()
	return p
}

// startProcess runs nuncio with args; admin is the admin port it was given, or 0.
func startProcess(t testing.TB, admin int, args ...string) *proxy {
	t.Helper()
	p := newProxy(t, admin)
	p.start(args...)
	return p
}

func newProxy(t testing.TB, admin int) *proxy {
	return &proxy{t: t, dir: t.TempDir(), admin: admin, ports: map[string]int{}, log: &syncBuffer{}, exited: make(chan struct{})}
}

// start runs nuncio with args, and stops it when the test ends.
func (p *proxy) start(args ...string) {
	p.t.Helper()
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	p.t.Cleanup(func() {
		p.stop()
		if p.t.Failed() {
			p.t.Logf("nuncio %s output:\n%s", args[0], p.log.String())
		}
	})
}

func (p *proxy) waitReady() {
	p.t.Helper()
	wait.NoError(p.t, "nuncio to be ready", func() error {
		select {
		case <-p.exited:
			p.t.Fatalf("nuncio exited early (%v):\n%s", p.exitErr, p.log.String())
		default:
		}
		resp, err := http.Get(p.adminURL("/ready"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("/ready: %d; output:\n%s", resp.StatusCode, p.log.String())
		}
		return nil
	})
}

func (p *proxy) adminURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.admin) + path
}

// url is a URL on the named listener port.
func (p *proxy) url(port, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(p.ports[port]) + path
}

func (p *proxy) addr(port string) string { return "127.0.0.1:" + strconv.Itoa(p.ports[port]) }

// rewrite replaces the config file (atomically, as editors do) with a new rendering.
func (p *proxy) rewrite(cfg string, data map[string]any) {
	p.t.Helper()
	tmp := p.cfgPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(p.render(cfg, data)), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, p.cfgPath); err != nil {
		p.t.Fatal(err)
	}
}

// signal sends sig to the process.
func (p *proxy) signal(sig os.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// stop asks the process to drain and waits for it, killing it if it hangs.
func (p *proxy) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("nuncio did not exit within 15s of SIGTERM")
	}
}

// waitLog waits until the process output contains substr.
func (p *proxy) waitLog(substr string, count int) {
	p.t.Helper()
	wait.NoError(p.t, fmt.Sprintf("%q (x%d) in the output", substr, count), func() error {
		if strings.Count(p.log.String(), substr) < count {
			return fmt.Errorf("output:\n%s", p.log.String())
		}
		return nil
	})
}

// echo is what the echo upstream reports about a request it saw.
type echo struct {
	Server  string              `json:"server"`
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Proto   string              `json:"proto"`
	Header  map[string][]string `json:"header"`
	Body    string              `json:"body"`
	Trailer map[string][]string `json:"trailer"`
}

// echoHandler answers with a JSON description of the request. Special paths: /status/N
// answers N, /delay/MS waits, /stream/N writes N chunks, /close closes the connection.
func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/status/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(code)
			return
		case strings.HasPrefix(r.URL.Path, "/delay/"):
			ms, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/delay/"))
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		case strings.HasPrefix(r.URL.Path, "/stream/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/stream/"))
			w.Header().Set("content-type", "text/plain")
			for i := 0; i < n; i++ {
				fmt.Fprintf(w, "chunk %d\n", i)
				w.(http.Flusher).Flush()
			}
			return
		case r.URL.Path == "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.Header().Set("X-Checksum", "abc")
			return
		case r.URL.Path == "/hop":
			w.Header().Set("Connection", "X-Secret")
			w.Header().Set("X-Secret", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("Server", "upstream")
		}
		body, _ := io.ReadAll(r.Body)
		e := echo{Server: name, Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Proto: r.Proto,
			Header: r.Header, Body: string(body), Trailer: r.Trailer}
		w.Header().Set("content-type", "application/json")
		w.Header().Set("x-upstream", name)
		json.NewEncoder(w).Encode(e)
	})
}

// startEcho runs an HTTP/1.1 echo upstream on loopback.
func startEcho(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(echoHandler(name))
	t.Cleanup(s.Close)
	return s
}

// startH2CEcho runs an echo upstream that speaks HTTP/2 with prior knowledge (h2c) as well
// as HTTP/1.1.
func startH2CEcho(t testing.TB, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(echoHandler(name))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetHTTP1(true)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func hostPort(s *httptest.Server) (string, int) {
	a := s.Listener.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// get performs a request and returns status, headers and body.
func do(t testing.TB, c *http.Client, method, url string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

func decodeEcho(t testing.TB, body string) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("upstream answer is not an echo: %v\n%s", err, body)
	}
	return e
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// certPair makes a self-signed certificate for names and writes it into dir.
func certPair(t testing.TB, dir, base string, names ...string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	c := certs.SelfSigned(t, names...)
	certFile = filepath.Join(dir, base+".pem")
	keyFile = filepath.Join(dir, base+"-key.pem")
	os.WriteFile(certFile, c.CertPEM, 0o644)
	os.WriteFile(keyFile, c.KeyPEM, 0o600)
	return certFile, keyFile, c.Pool()
}

// tlsClient trusts pool and asks for serverName.
func tlsClient(pool *x509.CertPool, serverName string, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawExchange writes raw bytes on a fresh connection and returns everything the proxy sends
// back until it closes the connection or stays quiet for a moment.
func rawExchange(t testing.TB, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
		n, err := c.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String()
		}
	}
}

// statusOf extracts the status code of the first response in raw output (0 when none).
func statusOf(raw string) int {
	if !strings.HasPrefix(raw, "HTTP/1.") || len(raw) < 12 {
		return 0
	}
	code, _ := strconv.Atoi(raw[9:12])
	return code
}

var _ = context.Background
