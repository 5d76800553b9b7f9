package k8stest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// adminToken authenticates the test and the programs it starts. Its user is in system:masters,
// which RBAC lets do anything, the way a cluster-admin kubeconfig does.
const adminToken = "nuncio-test-admin"

// Options configure New.
type Options struct {
	// Dir holds the data, credentials, kubeconfig and logs; removed by Close when New made it.
	Dir string
	// InsideNetns is set by a program that already runs in the namespace it wants the
	// environment in (the benchmark re-executes itself there): processes start directly and
	// sockets are created on any thread. Otherwise New creates a namespace.
	InsideNetns bool
	// Logf reports progress (the binaries used, the time to ready); nil for silence.
	Logf func(format string, args ...any)
}

// Env is a running etcd and kube-apiserver in a network namespace.
type Env struct {
	// Config is an administrator's client configuration whose connections are made inside the
	// namespace; QPS and Burst are raised for tests that create many objects.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file for programs running inside the namespace.
	Kubeconfig string
	// Server is the API server's URL, https://127.0.0.1:PORT inside the namespace.
	Server string
	// Dir holds data, credentials and logs.
	Dir string
	// Netns is the namespace everything runs in; nil when Options.InsideNetns.
	Netns *Netns

	etcd, apiserver *Process
	ownDir          bool

	mu    sync.Mutex
	procs []*Process // started by StartProcess, stopped by Close
}

// skipError means the environment cannot be had on this machine (a binary is missing), as opposed
// to failing to start: tests skip on it.
type skipError struct{ reason string }

func (e skipError) Error() string { return "k8stest: " + e.reason }

// IsSkip reports whether err from New means the environment is unavailable here.
func IsSkip(err error) bool {
	var s skipError
	return errors.As(err, &s)
}

// Binaries finds etcd and kube-apiserver: $ETCD or Debian's /usr/bin/etcd, and $KUBE_APISERVER or
// the binary tools/kube-apiserver.sh has cached. It does not build kube-apiserver, which takes
// minutes: tools/test-deps.sh does that once per machine.
func Binaries() (etcd, apiserver string, err error) {
	etcd = os.Getenv("ETCD")
	if etcd == "" {
		etcd = "/usr/bin/etcd"
		if p, err := exec.LookPath("etcd"); err == nil {
			etcd = p
		}
	}
	if _, err := os.Stat(etcd); err != nil {
		return "", "", skipError{etcd + " not found: install Debian's etcd-server (tools/test-deps.sh does)"}
	}
	apiserver = os.Getenv("KUBE_APISERVER")
	if apiserver == "" {
		script, err := findScript("tools/kube-apiserver.sh")
		if err != nil {
			return "", "", skipError{"kube-apiserver: " + err.Error()}
		}
		out, err := exec.Command(script, "--check").Output()
		if err != nil {
			return "", "", skipError{"kube-apiserver is not built: run tools/test-deps.sh or tools/kube-apiserver.sh (once per machine, several minutes), or set KUBE_APISERVER"}
		}
		apiserver = strings.TrimSpace(string(out))
	}
	if _, err := os.Stat(apiserver); err != nil {
		return "", "", skipError{"kube-apiserver: " + err.Error()}
	}
	return etcd, apiserver, nil
}

// findScript looks for rel in the working directory and its parents, up to the repository root.
func findScript(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory", rel)
		}
		dir = parent
	}
}

// New starts etcd and kube-apiserver and waits until the API server is ready. The error
// satisfies IsSkip when a binary is missing.
func New(ctx context.Context, opts Options) (_ *Env, err error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	etcdBin, apiserverBin, err := Binaries()
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: opts.Dir}
	if e.Dir == "" {
		if e.Dir, err = os.MkdirTemp("", "nuncio-k8s-"); err != nil {
			return nil, err
		}
		e.ownDir = true
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if !opts.InsideNetns {
		if e.Netns, err = NewNetns(); err != nil {
			return nil, err
		}
	}
	start := time.Now()

	ports, err := e.FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, port := ports[0], ports[1], ports[2]
	clientURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if e.etcd, err = e.startProcess("etcd", etcdBin,
		"--name", "default",
		"--data-dir", filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "default="+peerURL,
		// The API server's watch cache learns etcd's current revision from progress
		// notifications. It asks for them only from etcd versions newer than Debian's 3.4.23,
		// so without frequent periodic ones a watch from a just-listed resource version is
		// refused ("Too large resource version") until an object of that kind changes: an
		// informer's first watch would fail and relist.
		"--experimental-watch-progress-notify-interval", "100ms",
		// A test's data dies with it: never wait for the disk.
		"--unsafe-no-fsync",
		"--logger", "zap", "--log-level", "warn",
	); err != nil {
		return nil, err
	}

	creds, err := writeCredentials(e.Dir)
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(e.Dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+`,nuncio-test-admin,nuncio-test-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, err
	}
	e.Server = "https://127.0.0.1:" + strconv.Itoa(port)
	if e.apiserver, err = e.startProcess("kube-apiserver", apiserverBin,
		"--etcd-servers", clientURL,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--advertise-address", advertiseAddr,
		"--cert-dir", filepath.Join(e.Dir, "apiserver-certs"),
		"--tls-cert-file", creds.certFile,
		"--tls-private-key-file", creds.keyFile,
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", creds.serviceAccountKey,
		"--service-account-signing-key-file", creds.serviceAccountKey,
		// Only configuration: the ClusterIPs allocated from it carry no traffic here, since
		// the controller routes to pod addresses from EndpointSlices.
		"--service-cluster-ip-range", "10.96.0.0/16",
		// Nothing answers for the "kubernetes" Service's endpoints, so do not maintain them.
		"--endpoint-reconciler-type", "none",
		// No kube-controller-manager runs: the ServiceAccount admission plugin would wait for
		// token controllers that never come. Tests create no Pods.
		"--disable-admission-plugins", "ServiceAccount",
		// Flow control would queue the benchmark's bursts of writes and measure itself.
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	); err != nil {
		return nil, err
	}

	e.Config = &rest.Config{
		Host:            e.Server,
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: creds.caPEM},
		Dial:            e.DialContext,
		QPS:             1000,
		Burst:           2000,
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := writeKubeconfig(e.Kubeconfig, e.Server, creds.caPEM); err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	logf("k8stest: etcd %s and kube-apiserver %s ready in %s (netns %s, dir %s)",
		etcdBin, apiserverBin, time.Since(start).Round(time.Millisecond), e.netnsName(), e.Dir)
	return e, nil
}

func writeKubeconfig(path, server string, ca []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["nuncio-test"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	cfg.Contexts["nuncio-test"] = &clientcmdapi.Context{Cluster: "nuncio-test", AuthInfo: "admin"}
	cfg.CurrentContext = "nuncio-test"
	return clientcmd.WriteToFile(*cfg, path)
}

// waitReady polls /readyz until the API server answers ok, failing early when etcd or the API
// server exits.
func (e *Env) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	rt, err := rest.TransportFor(e.Config)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var last string
	for {
		for _, p := range []*Process{e.etcd, e.apiserver} {
			if done, _ := p.Exited(); done {
				return p.exitError()
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.Server+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body[:n])
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("k8stest: kube-apiserver not ready (%s); last lines of %s:\n%s", last,
				e.apiserver.Log, indent(e.apiserver.Tail(30)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Env) netnsName() string {
	if e.Netns == nil {
		return "(current)"
	}
	return e.Netns.Name
}

// Clientset returns a typed client for the administrator.
func (e *Env) Clientset() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(e.Config)
}

// DialContext connects to addr inside the namespace: the API server, the data plane's
// listeners, a backend.
func (e *Env) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if e.Netns == nil {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return e.Netns.DialContext(ctx, network, addr)
}

// Listen listens on addr inside the namespace: a backend at BackendAddr, say.
func (e *Env) Listen(network, addr string) (net.Listener, error) {
	if e.Netns == nil {
		return net.Listen(network, addr)
	}
	return e.Netns.Listen(network, addr)
}

// HTTPClient returns a client whose connections are made inside the namespace. Keep-alive is
// off so that every request opens a connection and sees the data plane's current listeners.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: e.DialContext, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
}

// FreePort returns a TCP port free on 127.0.0.1 in the namespace. The namespace is private, so
// nothing else takes the port before the caller binds it.
func (e *Env) FreePort() (int, error) {
	l, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePorts returns n distinct free ports: each is held until all are chosen, since a port
// just released may be handed out again.
func (e *Env) FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Argv returns the command line that runs name with args inside the namespace.
func (e *Env) Argv(name string, args ...string) []string {
	if e.Netns == nil {
		return append([]string{name}, args...)
	}
	return e.Netns.Wrap(name, args...)
}

func (e *Env) startProcess(name, bin string, args ...string) (*Process, error) {
	return startProcess(e.Dir, name, e.Argv(bin, args...))
}

// StartProcess starts bin with args inside the namespace, its output in Dir/name.log. Close
// stops it if it still runs; so does the cleanup StartProcessT registers.
func (e *Env) StartProcess(name, bin string, args ...string) (*Process, error) {
	p, err := e.startProcess(name, bin, args...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// StartProcessT is StartProcess for a test: the process is stopped when the test ends, and
// the end of its log is printed if the test failed.
func (e *Env) StartProcessT(tb testing.TB, name, bin string, args ...string) *Process {
	tb.Helper()
	p, err := e.StartProcess(name, bin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Stop(5 * time.Second)
		if tb.Failed() {
			tb.Logf("last lines of %s (pid %d):\n%s", p.Log, p.PID(), indent(p.Tail(40)))
		}
	})
	return p
}

// Logs returns the ends of etcd's and the API server's logs, for a failing test to print.
func (e *Env) Logs() string {
	var b strings.Builder
	for _, p := range []*Process{e.etcd, e.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "last lines of %s (pid %d):\n%s\n", p.Log, p.PID(), indent(p.Tail(20)))
		}
	}
	return b.String()
}

// Close stops every process (by PID), deletes the namespace and, when New created it, Dir.
func (e *Env) Close() error {
	e.mu.Lock()
	procs := append([]*Process(nil), e.procs...)
	e.procs = nil
	e.mu.Unlock()
	// The API server before etcd, so that it does not log etcd's absence at length.
	procs = append(procs, e.apiserver, e.etcd)
	for _, p := range procs {
		if p != nil {
			p.Stop(5 * time.Second)
		}
	}
	var err error
	if e.Netns != nil {
		err = e.Netns.Delete()
	}
	if e.ownDir {
		err = errors.Join(err, os.RemoveAll(e.Dir))
	}
	return err
}

// Start gives the test an environment of its own, closed when the test ends. It skips the test
// when a binary is missing.
func Start(tb testing.TB) *Env {
	tb.Helper()
	e, err := New(context.Background(), Options{Dir: tb.TempDir(), Logf: tb.Logf})
	if IsSkip(err) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(e.Logs())
		}
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	return e
}

var shared struct {
	once sync.Once
	env  *Env
	err  error
}

// Shared returns the package's environment, starting it on first use; Main closes it. Tests
// skip when a binary is missing.
func Shared(tb testing.TB) *Env {
	tb.Helper()
	shared.once.Do(func() {
		shared.env, shared.err = New(context.Background(), Options{Logf: tb.Logf})
	})
	if IsSkip(shared.err) {
		tb.Skip(shared.err)
	}
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Log(shared.env.Logs())
		}
	})
	return shared.env
}

// Main runs the package's tests and then closes the shared environment, if one was started:
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
