// Command xds benchmarks `nuncio controller` at scale: a generated config of 10,000 routes over
// 1,000 virtual hosts and 1,000 clusters of 10 endpoints, served to three ADS clients.
//
// It starts the controller as its own process (so that its memory and CPU are its own), and
// measures, for the state-of-the-world and the delta protocol in turn:
//
//   - controller start → ready (resources translated and set) → all clients hold the full config;
//   - one route changed in the file → the change received by all clients (p50/p99 over -changes);
//   - one endpoint added in the file → likewise;
//   - the bytes each push carried, and the controller's RSS and CPU time;
//   - with -dataplanes, the same end to end through `nuncio run --xds` processes, their memory,
//     and request latency through one of them idle and while the file changes every 100 ms.
//
// -cpuprofile profiles the in-process breakdowns (the controller's translation and a data
// plane's decode and compile); -profiles saves a data plane's heap profiles (from its admin
// /debug/pprof/heap) after start and after the changes.
//
// Changes are timed from the rename of the new file into place to the arrival of the response
// that carries them, so they include the file source's 50 ms debounce and a full re-read and
// translation of the file. The clients are raw ADS streams (xdstest), which stand in for data
// planes: they ACK every response and decode nothing but resource names.
//
// usage: go run ./bench/xds -nuncio bin/nuncio [-changes 100] [-protocols sotw,delta] [-cpuprofile file] [-profiles dir]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/nuncio-gw/nuncio/bench/proc"
	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsserver/xdstest"
)

func main() {
	nuncio := flag.String("nuncio", "bin/nuncio", "the nuncio binary to run as the controller")
	changes := flag.Int("changes", 100, "route changes and endpoint additions to time, each")
	clients := flag.Int("clients", 3, "ADS clients")
	protocols := flag.String("protocols", "sotw,delta", "comma-separated: sotw, delta")
	vhosts := flag.Int("vhosts", 1000, "virtual hosts")
	routes := flag.Int("routes-per-host", 10, "routes per virtual host")
	clusters := flag.Int("clusters", 1000, "clusters")
	endpoints := flag.Int("endpoints", 10, "endpoints per cluster")
	dataPlanes := flag.Int("dataplanes", 3, "`nuncio run --xds` data planes for the end-to-end runs (0: none)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the in-process breakdowns to `file`")
	flag.StringVar(&profileDir, "profiles", "", "save the first data plane's heap profiles in `dir`")
	flag.Parse()

	s := scale{VirtualHosts: *vhosts, RoutesPerHost: *routes, Clusters: *clusters, Endpoints: *endpoints}
	host, _ := os.Hostname()
	fmt.Printf("# nuncio controller xDS benchmark\n\n")
	fmt.Printf("- date: %s\n- machine: %s, %d CPUs (%s), %s/%s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		host, runtime.NumCPU(), proc.CPUModel(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine shows in every figure; say how much there was.
		fmt.Printf("- load average at start: %s\n", strings.Join(strings.Fields(string(la))[:3], " "))
	}
	fmt.Printf("- config: %d routes over %d virtual hosts, %d clusters of %d endpoints; %d clients; %d changes of each kind\n\n",
		s.VirtualHosts*s.RoutesPerHost, s.VirtualHosts, s.Clusters, s.Endpoints, *clients, *changes)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench-xds:", err)
			os.Exit(1)
		}
	}
	if err := breakdown(s); err != nil {
		fmt.Fprintln(os.Stderr, "bench-xds:", err)
		os.Exit(1)
	}
	if err := dataPlaneBreakdown(s); err != nil {
		fmt.Fprintln(os.Stderr, "bench-xds:", err)
		os.Exit(1)
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	for _, p := range strings.Split(*protocols, ",") {
		if err := run(*nuncio, s, p == "delta", *clients, *changes); err != nil {
			fmt.Fprintln(os.Stderr, "bench-xds:", err)
			os.Exit(1)
		}
	}
	for _, p := range strings.Split(*protocols, ",") {
		if *dataPlanes == 0 {
			break
		}
		if err := runDataPlanes(*nuncio, s, p == "delta", *dataPlanes, *changes); err != nil {
			fmt.Fprintln(os.Stderr, "bench-xds:", err)
			os.Exit(1)
		}
	}
}

// breakdown times the controller's two steps in this process: translating the file (parse,
// split into xDS resources, validate) and setting a snapshot (hash what changed, diff). A
// change's latency is the debounce plus these plus the push. Each step is timed for one route
// change and one endpoint addition with the controller's incremental translator, and, for
// comparison, translating the file from scratch.
func breakdown(s scale) error {
	state := changes{routeTags: map[int]string{}, extra: map[int][]string{}}
	var scratch []time.Duration
	var translate, update [2][]time.Duration
	srv := xdsserver.New(xdsserver.Options{})
	var tr source.Translator
	for i := range 21 {
		kind := i % 2
		if kind == 0 {
			state.routeTags[i] = "t" + strconv.Itoa(i)
		} else {
			state.extra[i%s.Clusters] = append(state.extra[i%s.Clusters], fmt.Sprintf("10.9.%d.%d", i/250, i%250+1))
		}
		data := generate(s, state)
		t0 := time.Now()
		r, err := tr.Translate("envoy.json", data)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := srv.Update(r); err != nil {
			return err
		}
		t2 := time.Now()
		if i > 0 { // the first is warm-up
			translate[kind] = append(translate[kind], t1.Sub(t0))
			update[kind] = append(update[kind], t2.Sub(t1))
		}
		if i%4 == 1 {
			t3 := time.Now()
			if _, err := source.Translate("envoy.json", data); err != nil {
				return err
			}
			scratch = append(scratch, time.Since(t3))
		}
	}
	fmt.Printf("## where a change's time goes (in process, median of 10)\n\n")
	fmt.Printf("| step | one route changed | one endpoint added |\n| --- | --- | --- |\n")
	fmt.Printf("| file source debounce (after a rename; %s after a plain write) | %s | %s |\n",
		ms(bootstrap.DefaultDebounce), ms(bootstrap.RenameDebounce), ms(bootstrap.RenameDebounce))
	fmt.Printf("| translate what changed: split the file, decode, generate, validate | %s | %s |\n", ms(pct(translate[0], 50)), ms(pct(translate[1], 50)))
	fmt.Printf("| snapshot: hash what changed, diff, set for every node | %s | %s |\n", ms(pct(update[0], 50)), ms(pct(update[1], 50)))
	fmt.Printf("| (translate the whole file from scratch, for comparison) | %s | |\n\n", ms(pct(scratch, 50)))
	return nil
}

func run(nuncio string, s scale, delta bool, nclients, nchanges int) error {
	proto := "state of the world"
	if delta {
		proto = "delta"
	}
	dir, err := os.MkdirTemp("", "bench-xds")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "envoy.json")
	base := generate(s, changes{})
	if err := os.WriteFile(cfg, base, 0o644); err != nil {
		return err
	}
	xdsAddr, healthAddr := freeAddr(), freeAddr()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.Command(nuncio, "controller", "-c", cfg, "--xds-address", xdsAddr, "--health-address", healthAddr, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	// The clients connect as soon as the port listens, before the config is ready, as data
	// planes starting with the controller would.
	if err := waitListening(ctx, xdsAddr); err != nil {
		return err
	}
	readyC := make(chan time.Duration, 1)
	go func() { readyC <- waitReady(ctx, healthAddr, start) }()
	var cs []*xdstest.Client
	for i := range nclients {
		c, err := xdstest.Dial(ctx, xdsAddr, fmt.Sprintf("bench-%d", i), delta)
		if err != nil {
			return err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	full := func(st xdstest.State) bool {
		return len(st.Resources[resourcev3.ListenerType]) == 1 && len(st.Resources[resourcev3.RouteType]) == 1 &&
			len(st.Resources[resourcev3.ClusterType]) == s.Clusters && len(st.Resources[resourcev3.EndpointType]) == s.Clusters
	}
	if err := waitAll(ctx, cs, full); err != nil {
		return err
	}
	allFull := time.Since(start)
	ready := <-readyC
	rss0, _ := proc.Memory(cmd.Process.Pid)
	cpu0 := proc.CPUTime(cmd.Process.Pid)

	var routeLat, epLat []time.Duration
	var routeBytes, epBytes int
	state := changes{routeTags: map[int]string{}, extra: map[int][]string{}}
	for i := range nchanges {
		// One route changes.
		tag := "v" + strconv.Itoa(i)
		routeIdx := (i * 97) % (s.VirtualHosts * s.RoutesPerHost)
		state.routeTags[routeIdx] = tag
		d, b, err := timeChange(ctx, cs, cfg, generate(s, state), resourcev3.RouteType, "bench",
			[]byte(fmt.Sprintf("/r%d-%s/", routeIdx, tag)))
		if err != nil {
			return fmt.Errorf("route change %d: %w", i, err)
		}
		routeLat, routeBytes = append(routeLat, d), b

		// One endpoint is added to one cluster.
		addr := fmt.Sprintf("10.200.%d.%d", i/250, 1+i%250)
		cl := (i * 37) % s.Clusters
		state.extra[cl] = append(state.extra[cl], addr)
		d, b, err = timeChange(ctx, cs, cfg, generate(s, state), resourcev3.EndpointType, fmt.Sprintf("c%d", cl), []byte(addr))
		if err != nil {
			return fmt.Errorf("endpoint change %d: %w", i, err)
		}
		epLat, epBytes = append(epLat, d), b
	}
	cpu1 := proc.CPUTime(cmd.Process.Pid)
	rss1, hwm := proc.Memory(cmd.Process.Pid)

	fmt.Printf("## %s (%d clients)\n\n", proto, nclients)
	fmt.Printf("| measure | value |\n| --- | --- |\n")
	fmt.Printf("| config file size | %.1f MiB |\n", float64(len(base))/(1<<20))
	fmt.Printf("| controller start → ready (/readyz) | %s |\n", ms(ready))
	fmt.Printf("| controller start → all %d clients hold the full config | %s |\n", nclients, ms(allFull))
	fmt.Printf("| one route changed → all clients, p50 / p99 / max | %s / %s / %s |\n", ms(pct(routeLat, 50)), ms(pct(routeLat, 99)), ms(pct(routeLat, 100)))
	fmt.Printf("| one endpoint added → all clients, p50 / p99 / max | %s / %s / %s |\n", ms(pct(epLat, 50)), ms(pct(epLat, 99)), ms(pct(epLat, 100)))
	fmt.Printf("| bytes pushed per client for one route change | %s |\n", size(routeBytes))
	fmt.Printf("| bytes pushed per client for one endpoint addition | %s |\n", size(epBytes))
	fmt.Printf("| controller RSS after start / after the changes (peak) | %s / %s (%s) |\n", size(rss0), size(rss1), size(hwm))
	fmt.Printf("| controller CPU per change (translate, snapshot, push to %d) | %s |\n\n", nclients, ms((cpu1-cpu0)/time.Duration(2*nchanges)))
	return nil
}

// timeChange writes data over cfg and returns how long until every client holds resource name
// of typ containing marker, and the bytes of the response that brought it to the first client.
func timeChange(ctx context.Context, cs []*xdstest.Client, cfg string, data []byte, typ, name string, marker []byte) (time.Duration, int, error) {
	marks := make([]int, len(cs))
	for i, c := range cs {
		marks[i] = len(c.Responses())
	}
	tmp := cfg + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := os.Rename(tmp, cfg); err != nil {
		return 0, 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	has := func(st xdstest.State) bool {
		a := st.Resources[typ][name]
		return a != nil && bytes.Contains(a.GetValue(), marker)
	}
	if err := waitAll(cctx, cs, has); err != nil {
		return 0, 0, err
	}
	var last time.Time
	bytesPushed := 0
	for i, c := range cs {
		for _, r := range c.Responses()[marks[i]:] {
			if r.TypeURL != typ {
				continue
			}
			if r.At.After(last) {
				last = r.At
			}
			if i == 0 {
				bytesPushed += r.Bytes
			}
			break
		}
	}
	// Let the controller settle (ACKs) before the next change.
	time.Sleep(20 * time.Millisecond)
	return last.Sub(start), bytesPushed, nil
}

func waitAll(ctx context.Context, cs []*xdstest.Client, cond func(xdstest.State) bool) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Go(func() { errs[i] = c.Wait(ctx, cond) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func waitListening(ctx context.Context, addr string) error {
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller never listened on %s", addr)
		case <-time.After(time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, addr string, start time.Time) time.Duration {
	for ctx.Err() == nil {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
