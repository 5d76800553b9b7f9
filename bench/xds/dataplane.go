package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nuncio-gw/nuncio/bench/proc"
)

// dataPlane is one `nuncio run --xds` process.
type dataPlane struct {
	cmd    *exec.Cmd
	admin  string
	addr   string // the bench listener's bound address, once known
	client *http.Client
	// eds receives the arrival time of every "xds: update applied" log line for endpoints.
	eds chan time.Time
}

var listenerAddr = regexp.MustCompile(`(?m)^bench::(\S+)$`)

// runDataPlanes measures the whole path: the controller and n data planes start together, and
// changes to the file are timed until every data plane serves them (routes, seen through the
// probe route's response) or has applied them (endpoints, seen in its log, since the
// generated endpoints do not exist).
func runDataPlanes(nuncio string, s scale, delta bool, n, nchanges int) error {
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
	state := changes{routeTags: map[int]string{}, extra: map[int][]string{}, probe: "p0"}
	if err := os.WriteFile(cfg, generate(s, state), 0o644); err != nil {
		return err
	}
	xdsAddr := freeAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	ctl := exec.Command(nuncio, "controller", "-c", cfg, "--xds-address", xdsAddr, "--log-level", "warn")
	ctl.Stderr = os.Stderr
	if err := ctl.Start(); err != nil {
		return err
	}
	defer stop(ctl)
	var dps []*dataPlane
	for i := range n {
		dp := &dataPlane{admin: freeAddr(), eds: make(chan time.Time, 1024), client: &http.Client{Timeout: 5 * time.Second}}
		args := []string{"run", "--xds", xdsAddr, "--node-id", fmt.Sprintf("dp-%d", i), "--admin", dp.admin}
		if delta {
			args = append(args, "--xds-delta")
		}
		dp.cmd = exec.Command(nuncio, args...)
		stderr, err := dp.cmd.StderrPipe()
		if err != nil {
			return err
		}
		if err := dp.cmd.Start(); err != nil {
			return err
		}
		defer stop(dp.cmd)
		go dp.readLog(stderr)
		dps = append(dps, dp)
	}

	// Full config: every data plane answers the probe route.
	if err := eachDP(dps, func(dp *dataPlane) error { return dp.waitProbe(ctx, "p0") }); err != nil {
		return err
	}
	serving := time.Since(start)
	dps[0].saveHeap("start")
	var rss []int
	for _, dp := range dps {
		r, _ := proc.Memory(dp.cmd.Process.Pid)
		rss = append(rss, r)
	}

	var routeLat, epLat []time.Duration
	for i := range nchanges {
		tag := "p" + strconv.Itoa(i+1)
		state.probe = tag
		t0, err := replace(cfg, generate(s, state))
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var last time.Time
		err = eachDP(dps, func(dp *dataPlane) error {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := dp.waitProbe(cctx, tag); err != nil {
				return err
			}
			mu.Lock()
			last = maxTime(last, time.Now())
			mu.Unlock()
			return nil
		})
		if err != nil {
			return fmt.Errorf("route change %d: %w", i, err)
		}
		routeLat = append(routeLat, last.Sub(t0))
		time.Sleep(20 * time.Millisecond)

		for _, dp := range dps {
			drain(dp.eds)
		}
		cl := (i * 37) % s.Clusters
		state.extra[cl] = append(state.extra[cl], fmt.Sprintf("10.200.%d.%d", i/250, 1+i%250))
		t0, err = replace(cfg, generate(s, state))
		if err != nil {
			return err
		}
		last = time.Time{}
		for _, dp := range dps {
			select {
			case at := <-dp.eds:
				last = maxTime(last, at)
			case <-time.After(30 * time.Second):
				return fmt.Errorf("endpoint change %d: a data plane applied nothing", i)
			}
		}
		epLat = append(epLat, last.Sub(t0))
		time.Sleep(20 * time.Millisecond)
	}
	dps[0].saveHeap("after")
	idle, churn, nchurn, err := churnLatency(dps[0], cfg, s, state)
	if err != nil {
		return err
	}
	var rssAfter []int
	for _, dp := range dps {
		r, _ := proc.Memory(dp.cmd.Process.Pid)
		rssAfter = append(rssAfter, r)
	}

	fmt.Printf("## end to end: controller and %d `nuncio run --xds` data planes, %s\n\n", n, proto)
	fmt.Printf("| measure | value |\n| --- | --- |\n")
	fmt.Printf("| controller start → all %d data planes serving the full config | %s |\n", n, ms(serving))
	fmt.Printf("| one route changed → served by all data planes, p50 / p99 / max | %s / %s / %s |\n", ms(pct(routeLat, 50)), ms(pct(routeLat, 99)), ms(pct(routeLat, 100)))
	fmt.Printf("| one endpoint added → applied by all data planes, p50 / p99 / max | %s / %s / %s |\n", ms(pct(epLat, 50)), ms(pct(epLat, 99)), ms(pct(epLat, 100)))
	fmt.Printf("| data plane RSS with the config, after start / after the changes | %s / %s |\n", sizes(rss), sizes(rssAfter))
	fmt.Printf("| request latency through one data plane, %d req/s: idle p50 / p99 | %s / %s |\n", churnRate, ms(pct(idle, 50)), ms(pct(idle, 99)))
	fmt.Printf("| the same while the file changes every %s (%d changes): p50 / p99 | %s / %s |\n\n", churnEvery, nchurn, ms(pct(churn, 50)), ms(pct(churn, 99)))
	return nil
}

func (dp *dataPlane) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `msg="xds: update applied"`) && strings.Contains(line, "type=cluster_load_assignment") {
			select {
			case dp.eds <- time.Now():
			default:
			}
		}
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			fmt.Fprintln(os.Stderr, "data plane:", line)
		}
	}
}

// waitProbe polls the data plane until its probe route answers body.
func (dp *dataPlane) waitProbe(ctx context.Context, body string) error {
	for {
		if dp.addr == "" {
			dp.addr = dp.listener()
		}
		if dp.addr != "" && dp.probe() == body {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("data plane %s never served %q", dp.admin, body)
		case <-time.After(time.Millisecond):
		}
	}
}

func (dp *dataPlane) listener() string {
	resp, err := dp.client.Get("http://" + dp.admin + "/listeners")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := listenerAddr.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func (dp *dataPlane) probe() string {
	req, _ := http.NewRequest("GET", "http://"+dp.addr+"/probe", nil)
	req.Host = "probe"
	resp, err := dp.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func eachDP(dps []*dataPlane, f func(*dataPlane) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(dps))
	for i, dp := range dps {
		wg.Go(func() { errs[i] = f(dp) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// replace renames data into place over path and returns when it did.
func replace(path string, data []byte) (time.Time, error) {
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return time.Time{}, err
	}
	t := time.Now()
	return t, os.Rename(path+".tmp", path)
}

func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func drain(c chan time.Time) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func sizes(ns []int) string {
	var s []string
	for _, n := range ns {
		s = append(s, size(n))
	}
	return strings.Join(s, ", ")
}

// profileDir, when set, receives heap profiles of the first data plane (its admin
// /debug/pprof/heap) after start and after the changes.
var profileDir string

func (dp *dataPlane) saveHeap(when string) {
	if profileDir == "" {
		return
	}
	resp, err := dp.client.Get("http://" + dp.admin + "/debug/pprof/heap?gc=1")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-xds: heap profile:", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	name := filepath.Join(profileDir, fmt.Sprintf("dataplane-%d-%s.heap", time.Now().Unix(), when))
	if err := os.WriteFile(name, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench-xds: heap profile:", err)
	}
}

// The churn scenario: a bounded, paced load (not as fast as it can go, which would measure the
// machine's saturation rather than the data plane's latency) through one data plane's probe
// route, first with the config still, then while the file changes every churnEvery.
const (
	churnRate     = 200 // requests per second, over churnWorkers connections
	churnWorkers  = 2
	churnEvery    = 100 * time.Millisecond
	churnDuration = 5 * time.Second
)

// churnLatency measures request latency idle and under churn. The changes alternate one route
// changed and one endpoint added, as in the timed changes; the files are generated before the
// load starts so that generating them does not compete with the data plane for the CPUs.
func churnLatency(dp *dataPlane, cfg string, s scale, state changes) (idle, churn []time.Duration, nchurn int, err error) {
	var files [][]byte
	for i := range int(churnDuration / churnEvery) {
		if i%2 == 0 {
			state.routeTags[(i*131)%(s.VirtualHosts*s.RoutesPerHost)] = "churn" + strconv.Itoa(i)
		} else {
			cl := (i * 53) % s.Clusters
			state.extra[cl] = append(state.extra[cl], fmt.Sprintf("10.201.%d.%d", i/250, 1+i%250))
		}
		files = append(files, generate(s, state))
	}
	if idle, err = dp.load(churnDuration); err != nil {
		return nil, nil, 0, err
	}
	changed := make(chan int)
	stopChanges := make(chan struct{})
	go func() {
		t := time.NewTicker(churnEvery)
		defer t.Stop()
		n := 0
		defer func() { changed <- n }()
		for _, f := range files {
			select {
			case <-stopChanges:
				return
			case <-t.C:
			}
			if _, err := replace(cfg, f); err != nil {
				fmt.Fprintln(os.Stderr, "bench-xds: churn:", err)
				return
			}
			n++
		}
	}()
	churn, err = dp.load(churnDuration)
	close(stopChanges)
	nchurn = <-changed
	return idle, churn, nchurn, err
}

// load sends churnRate requests per second to the probe route for d and returns their
// latencies. Each worker keeps its connection and sends on a fixed schedule; a request that
// is late starts at once, and its latency counts from when it was due.
func (dp *dataPlane) load(d time.Duration) ([]time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	interval := time.Second * churnWorkers / churnRate
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range churnWorkers {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			defer client.CloseIdleConnections()
			due := time.Now().Add(interval * time.Duration(w) / churnWorkers)
			for due.Before(end) {
				time.Sleep(time.Until(due))
				req, _ := http.NewRequest("GET", "http://"+dp.addr+"/probe", nil)
				req.Host = "probe"
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				took := time.Since(due)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, took)
				mu.Unlock()
				due = due.Add(interval)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("load: %w", firstErr)
	}
	return lat, nil
}
