// Command k8s benchmarks `nuncio controller --kubeconfig` against a real API server at the scale
// of issue 7: 10,000 Ingresses over 2,000 Services, each Service with an EndpointSlice.
//
// Like test/k8s, everything runs in a private network namespace: the program creates one and
// re-executes itself inside it (-inside), where it starts etcd and kube-apiserver (test/k8s's
// harness), the controller, one `nuncio run --xds` data plane, a backend at 192.0.2.10 and an ADS
// client (xdstest) standing in for more data planes. It measures:
//
//   - apply → served: the objects created through the API while the controller runs, until the
//     ADS client holds every Ingress host and every Service's cluster;
//   - controller start → served with every object already in the API server (a restart);
//   - one Ingress changed (a new host) → the ADS client holds it, and → the data plane answers
//     on it through the backend (end to end), p50/p99/max over -changes;
//   - the controller's CPU time and RSS (current and peak), from /proc.
//
// usage: go run ./bench/k8s -nuncio bin/nuncio [-ingresses 10000 -services 2000 -changes 50]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/nuncio-gw/nuncio/bench/proc"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver/xdstest"
	k8stest "github.com/nuncio-gw/nuncio/test/k8s"
)

type config struct {
	nuncio              string
	ingresses, services int
	changes, workers    int
	controllerArgs      string
	applyOnly           bool
}

func main() {
	var c config
	inside := flag.Bool("inside", false, "run in the current network namespace (set when the program re-executes itself in the one it created)")
	flag.StringVar(&c.nuncio, "nuncio", "bin/nuncio", "the nuncio binary to run as controller and data plane")
	flag.IntVar(&c.ingresses, "ingresses", 10000, "Ingresses, each with its own host")
	flag.IntVar(&c.services, "services", 2000, "Services (each with an EndpointSlice) the Ingresses spread over")
	flag.IntVar(&c.changes, "changes", 50, "single-Ingress changes to time")
	flag.IntVar(&c.workers, "workers", 32, "concurrent API requests while creating the objects")
	flag.StringVar(&c.controllerArgs, "controller-args", "", "more flags for `nuncio controller`, space-separated")
	flag.BoolVar(&c.applyOnly, "apply-only", false, "only time creating the objects through the API, without a controller")
	flag.Parse()

	var err error
	if *inside {
		err = run(c)
	} else {
		err = reexecInNetns()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-k8s:", err)
		os.Exit(1)
	}
}

// reexecInNetns creates the namespace, runs this program inside it, and deletes it.
func reexecInNetns() error {
	ns, err := k8stest.NewNetns()
	if err != nil {
		return err
	}
	defer ns.Delete()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := ns.Wrap(self, append([]string{"-inside"}, os.Args[1:]...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	// An interrupt reaches the child too (same process group); wait for its cleanup.
	signal.Ignore(os.Interrupt)
	return cmd.Run()
}

func run(c config) error {
	nuncio, err := absPath(c.nuncio)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	host, _ := os.Hostname()
	fmt.Printf("# nuncio controller against a real API server\n\n")
	fmt.Printf("- date: %s\n- machine: %s, %d CPUs (%s), %s/%s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		host, runtime.NumCPU(), proc.CPUModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("- load average at start: %s\n", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Printf("- objects: %d Ingresses (one host each) over %d Services, one EndpointSlice per Service\n\n", c.ingresses, c.services)

	if !c.applyOnly {
		if err := breakdown(c); err != nil {
			return err
		}
	}
	t0 := time.Now()
	env, err := k8stest.New(ctx, k8stest.Options{InsideNetns: true})
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Printf("etcd and kube-apiserver started in %s.\n\n", ms(time.Since(t0)))
	cs, err := env.Clientset()
	if err != nil {
		return err
	}

	// One backend answers for every endpoint; the probes of the end-to-end changes reach it.
	l, err := net.Listen("tcp", net.JoinHostPort(k8stest.BackendAddr, "8080"))
	if err != nil {
		return err
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Host)
	})}
	go backend.Serve(l)
	defer backend.Close()

	b := &bench{c: c, env: env, cs: cs, nuncio: nuncio}
	return b.run(ctx)
}

type bench struct {
	c      config
	env    *k8stest.Env
	cs     *kubernetes.Clientset
	nuncio string
}

const (
	namespace = "bench"
	class     = "nuncio"
)

func ingressHost(i int) string { return fmt.Sprintf("h%d.bench.example", i) }

func (b *bench) startController() (*k8stest.Process, string, error) {
	port, err := b.env.FreePort()
	if err != nil {
		return nil, "", err
	}
	xds := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"controller", "--kubeconfig", b.env.Kubeconfig, "--xds-address", xds, "--log-level", "warn"}
	args = append(args, strings.Fields(b.c.controllerArgs)...)
	p, err := b.env.StartProcess("controller", b.nuncio, args...)
	return p, xds, err
}

func (b *bench) run(ctx context.Context) error {
	if _, err := b.cs.CoreV1().Namespaces().Create(ctx, k8stest.Namespace(namespace), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := b.cs.NetworkingV1().IngressClasses().Create(ctx, k8stest.IngressClass(class, "nuncio.dev/ingress-controller"), metav1.CreateOptions{}); err != nil {
		return err
	}

	if b.c.applyOnly {
		start := time.Now()
		if err := b.apply(ctx); err != nil {
			return err
		}
		fmt.Printf("| measure | value |\n| --- | --- |\n")
		fmt.Printf("| create %d Ingresses, %d Services, %d EndpointSlices through the API (%d concurrent) | %s |\n\n",
			b.c.ingresses, b.c.services, b.c.services, b.c.workers, ms(time.Since(start)))
		return nil
	}

	// Apply → served, with the controller watching from the start.
	ctl, xds, err := b.startController()
	if err != nil {
		return err
	}
	ads, err := dialADS(ctx, xds, "bench-ads", ctl)
	if err != nil {
		return err
	}
	cpu0 := proc.CPUTime(ctl.PID())
	start := time.Now()
	if err := b.apply(ctx); err != nil {
		return err
	}
	applied := time.Since(start)
	served := newServedCheck(b.c.ingresses, b.c.services)
	if err := waitFor(ctx, ads, 10*time.Minute, served.full, ctl); err != nil {
		return fmt.Errorf("apply → served: %w (%s)", err, served)
	}
	applyServed := time.Since(start)
	applyCPU := proc.CPUTime(ctl.PID()) - cpu0
	rssApply, _ := proc.Memory(ctl.PID())
	ads.Close()
	ctl.Stop(10 * time.Second)

	// A restart: every object is there when the controller starts.
	start = time.Now()
	ctl, xds, err = b.startController()
	if err != nil {
		return err
	}
	defer ctl.Stop(10 * time.Second)
	ads, err = dialADS(ctx, xds, "bench-ads", ctl)
	if err != nil {
		return err
	}
	defer ads.Close()
	served = newServedCheck(b.c.ingresses, b.c.services)
	if err := waitFor(ctx, ads, 10*time.Minute, served.full, ctl); err != nil {
		return fmt.Errorf("start → served: %w (%s)", err, served)
	}
	startServed := time.Since(start)
	startCPU := proc.CPUTime(ctl.PID())
	rssStart, _ := proc.Memory(ctl.PID())

	// The data plane, for the end-to-end changes.
	adminPort, err := b.env.FreePort()
	if err != nil {
		return err
	}
	dp, err := b.env.StartProcess("data-plane", b.nuncio, "run", "--xds", xds, "--node-id", "gw-1",
		"--admin", "127.0.0.1:"+strconv.Itoa(adminPort), "--log-level", "warn")
	if err != nil {
		return err
	}
	defer dp.Stop(10 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if err := waitServed(ctx, client, ingressHost(0), 5*time.Minute, dp); err != nil {
		return fmt.Errorf("data plane: %w", err)
	}

	cpuBefore := proc.CPUTime(ctl.PID())
	var toADS, toDataPlane []time.Duration
	for i := range b.c.changes {
		d1, d2, err := b.change(ctx, ads, client, i)
		if err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
		toADS, toDataPlane = append(toADS, d1), append(toDataPlane, d2)
	}
	cpuChanges := proc.CPUTime(ctl.PID()) - cpuBefore
	rssEnd, hwm := proc.Memory(ctl.PID())

	fmt.Printf("## results\n\n| measure | value |\n| --- | --- |\n")
	fmt.Printf("| create %d Ingresses, %d Services, %d EndpointSlices through the API (%d concurrent) | %s |\n",
		b.c.ingresses, b.c.services, b.c.services, b.c.workers, ms(applied))
	fmt.Printf("| apply start → the ADS client holds every host and cluster | %s |\n", ms(applyServed))
	fmt.Printf("| controller CPU during apply → served | %s |\n", ms(applyCPU))
	fmt.Printf("| controller restart → the ADS client holds every host and cluster | %s |\n", ms(startServed))
	fmt.Printf("| controller CPU from start to served | %s |\n", ms(startCPU))
	fmt.Printf("| one Ingress changed → ADS client, p50 / p90 / p99 / max | %s / %s / %s / %s |\n",
		ms(pct(toADS, 50)), ms(pct(toADS, 90)), ms(pct(toADS, 99)), ms(pct(toADS, 100)))
	fmt.Printf("| one Ingress changed → data plane serves it, p50 / p90 / p99 / max | %s / %s / %s / %s |\n",
		ms(pct(toDataPlane, 50)), ms(pct(toDataPlane, 90)), ms(pct(toDataPlane, 99)), ms(pct(toDataPlane, 100)))
	fmt.Printf("| controller CPU per change | %s |\n", ms(cpuChanges/time.Duration(max(1, b.c.changes))))
	fmt.Printf("| controller RSS: after apply / after restart / after the changes (peak) | %s / %s / %s (%s) |\n\n",
		size(rssApply), size(rssStart), size(rssEnd), size(hwm))
	return nil
}

// apply creates the Services, EndpointSlices and Ingresses with c.workers requests in flight.
func (b *bench) apply(ctx context.Context) error {
	jobs := make(chan func() error)
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range b.c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				if err := job(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	send := func(f func() error) bool {
		select {
		case jobs <- f:
			return firstErr.Load() == nil
		case <-ctx.Done():
			return false
		}
	}
	co := metav1.CreateOptions{}
	for i := 0; i < b.c.services; i++ {
		name := "svc-" + strconv.Itoa(i)
		if !send(func() error {
			if _, err := b.cs.CoreV1().Services(namespace).Create(ctx, k8stest.Service(namespace, name, 80), co); err != nil {
				return err
			}
			_, err := b.cs.DiscoveryV1().EndpointSlices(namespace).Create(ctx,
				k8stest.EndpointSlice(namespace, name, name+"-1", 8080, k8stest.BackendAddr), co)
			return err
		}) {
			break
		}
	}
	for i := 0; i < b.c.ingresses; i++ {
		ing := k8stest.Ingress(namespace, "ing-"+strconv.Itoa(i), class, k8stest.IngressRule{
			Host: ingressHost(i), Path: "/", Service: "svc-" + strconv.Itoa(i%b.c.services), Port: 80,
		})
		if !send(func() error {
			_, err := b.cs.NetworkingV1().Ingresses(namespace).Create(ctx, ing, co)
			return err
		}) {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// change gives one Ingress a new host and times its arrival at the ADS client and until the
// data plane routes it to the backend.
func (b *bench) change(ctx context.Context, ads *xdstest.Client, client *http.Client, n int) (time.Duration, time.Duration, error) {
	idx := (n * 197) % b.c.ingresses
	host := fmt.Sprintf("change-%d.bench.example", n)
	ings := b.cs.NetworkingV1().Ingresses(namespace)
	ing, err := ings.Get(ctx, "ing-"+strconv.Itoa(idx), metav1.GetOptions{})
	if err != nil {
		return 0, 0, err
	}
	ing.Spec.Rules[0].Host = host
	marker := []byte(host)
	start := time.Now()
	if _, err := ings.Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
		return 0, 0, err
	}
	var toADS atomic.Int64
	adsDone := make(chan error, 1)
	go func() {
		err := waitFor(ctx, ads, 30*time.Second, func(st xdstest.State) bool {
			for _, a := range st.Resources[resourcev3.RouteType] {
				if containsBytes(a.GetValue(), marker) {
					return true
				}
			}
			return false
		})
		toADS.Store(int64(time.Since(start)))
		adsDone <- err
	}()
	err = waitServed(ctx, client, host, 30*time.Second)
	toDP := time.Since(start)
	if aerr := <-adsDone; aerr != nil {
		return 0, 0, aerr
	}
	return time.Duration(toADS.Load()), toDP, err
}

func dialADS(ctx context.Context, addr, node string, ctl *k8stest.Process) (*xdstest.Client, error) {
	// The controller's port opens a moment after the process starts.
	deadline := time.Now().Add(time.Minute)
	for {
		if done, err := ctl.Exited(); done {
			return nil, fmt.Errorf("%s exited: %v; last lines of its log:\n%s", ctl.Name, err, ctl.Tail(30))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return xdstest.Dial(ctx, addr, node, false)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("controller's xDS port %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor waits until cond holds for the client, failing early when one of procs exits.
func waitFor(ctx context.Context, c *xdstest.Client, timeout time.Duration, cond func(xdstest.State) bool, procs ...*k8stest.Process) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			for _, p := range procs {
				if done, err := p.Exited(); done {
					fmt.Fprintf(os.Stderr, "%s exited: %v; last lines of its log:\n%s\n", p.Name, err, p.Tail(30))
					cancel()
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return c.Wait(ctx, cond)
}

// waitServed polls the data plane on port 80 for host until the backend answers with it.
func waitServed(ctx context.Context, client *http.Client, host string, timeout time.Duration, procs ...*k8stest.Process) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		for _, p := range procs {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%s exited: %v; last lines of its log:\n%s", p.Name, err, p.Tail(30))
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:80/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err == nil {
			buf := make([]byte, 256)
			n, _ := resp.Body.Read(buf)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(buf[:n]) == host {
				return nil
			}
			last = fmt.Sprintf("%s %q", resp.Status, buf[:n])
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return errors.Join(ctx.Err(), fmt.Errorf("%s not served: last answer %s", host, last))
		}
		// Often enough to time a change to a few ms, not so often that the probes take the
		// CPU the data plane needs to apply it.
		time.Sleep(5 * time.Millisecond)
	}
}

// servedCheck tells when an ADS client holds every Ingress host (as a virtual host domain) and
// a cluster per Service. Route configurations are decoded once per version received, since
// the condition runs under the client's lock on every response.
type servedCheck struct {
	hosts, clusters int
	decoded         map[*anypb.Any]int // route configuration → bench hosts it holds
	seenHosts       int
	seenClusters    int
}

func newServedCheck(hosts, clusters int) *servedCheck {
	return &servedCheck{hosts: hosts, clusters: clusters, decoded: map[*anypb.Any]int{}}
}

func (s *servedCheck) full(st xdstest.State) bool {
	s.seenClusters = len(st.Resources[resourcev3.ClusterType])
	n := 0
	for _, a := range st.Resources[resourcev3.RouteType] {
		c, ok := s.decoded[a]
		if !ok {
			var rc routev3.RouteConfiguration
			if err := proto.Unmarshal(a.GetValue(), &rc); err == nil {
				for _, vh := range rc.GetVirtualHosts() {
					for _, d := range vh.GetDomains() {
						if strings.HasSuffix(d, ".bench.example") {
							c++
						}
					}
				}
			}
			s.decoded[a] = c
		}
		n += c
	}
	s.seenHosts = n
	return n >= s.hosts && s.seenClusters >= s.clusters
}

func (s *servedCheck) String() string {
	return fmt.Sprintf("held %d of %d hosts, %d clusters for %d Services", s.seenHosts, s.hosts, s.seenClusters, s.clusters)
}

func containsBytes(b, sub []byte) bool { return strings.Contains(string(b), string(sub)) }

func absPath(p string) (string, error) {
	if !strings.ContainsRune(p, '/') {
		return exec.LookPath(p)
	}
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func size(b int) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
