package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proxyDef says how to configure and start one proxy.
type proxyDef struct {
	Name     string
	Bin      string // looked up in PATH; Nuncio's is built by the runner
	Template string // under bench/configs
	Config   string // file name of the rendered configuration
	// Argv is the command line that runs the proxy in the foreground.
	Argv func(bins binaries, cfg, dir string) []string
	// Env is added to the runner's environment.
	Env func(dir string) []string
}

var proxyDefs = []proxyDef{
	{
		Name: "nginx", Bin: "nginx", Template: "nginx.conf.tmpl", Config: "nginx.conf",
		Argv: func(_ binaries, cfg, dir string) []string {
			// -e: the compiled-in error log would be opened before the configuration is read.
			return []string{"nginx", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", cfg}
		},
	},
	{
		Name: "haproxy", Bin: "haproxy", Template: "haproxy.cfg.tmpl", Config: "haproxy.cfg",
		Argv: func(_ binaries, cfg, _ string) []string { return []string{"haproxy", "-db", "-f", cfg} },
	},
	{
		Name: "caddy", Bin: "caddy", Template: "Caddyfile.tmpl", Config: "Caddyfile",
		Argv: func(_ binaries, cfg, _ string) []string {
			return []string{"caddy", "run", "--config", cfg, "--adapter", "caddyfile"}
		},
		Env: func(dir string) []string {
			// Caddy keeps state under $HOME/$XDG_*: keep it in the scratch directory.
			return []string{"GOMAXPROCS=1", "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
		},
	},
	{
		Name: "nuncio", Template: "nuncio.yaml.tmpl", Config: "nuncio.yaml",
		Argv: func(bins binaries, cfg, _ string) []string { return []string{bins.nuncio, "run", "-c", cfg} },
		Env:  func(string) []string { return []string{"GOMAXPROCS=1"} },
	},
}

func proxyByName(name string) (proxyDef, bool) {
	for _, p := range proxyDefs {
		if p.Name == name {
			return p, true
		}
	}
	return proxyDef{}, false
}

// scenario is one kind of traffic.
type scenario struct {
	Name    string
	Title   string
	Mode    string // listener: "h1", "h2c" or "tls" (HTTP/2 by ALPN)
	Tool    string // "wrk", "h2load" or "idle"
	Conns   int
	Streams int
	Path    string
	Routes  int // routes in the configuration; 0 for one catch-all route
}

var scenarioDefs = []scenario{
	{Name: "h1-100B", Title: "HTTP/1.1 keep-alive, 100 B, wrk -c50", Mode: "h1", Tool: "wrk", Conns: 50, Path: "/100"},
	{Name: "h1-16KiB", Title: "HTTP/1.1 keep-alive, 16 KiB, wrk -c50", Mode: "h1", Tool: "wrk", Conns: 50, Path: "/16k"},
	{Name: "h1-c1", Title: "one request in flight, 100 B, wrk -c1", Mode: "h1", Tool: "wrk", Conns: 1, Path: "/100"},
	{Name: "h2c", Title: "h2c, 100 B, h2load -c10 -m10", Mode: "h2c", Tool: "h2load", Conns: 10, Streams: 10, Path: "/100"},
	{Name: "h2-tls", Title: "HTTP/2 over TLS, 100 B, h2load -c10 -m10", Mode: "tls", Tool: "h2load", Conns: 10, Streams: 10, Path: "/100"},
	{Name: "routes-1000", Title: "1,000 routes, last 3 hit, 100 B, wrk -c50", Mode: "h1", Tool: "wrk", Conns: 50, Routes: 1000},
	{Name: "idle-10k", Title: "idle keep-alive connections, memory per connection", Mode: "h1", Tool: "idle", Path: "/100"},
}

func scenarioByName(name string) (scenario, bool) {
	for _, s := range scenarioDefs {
		if s.Name == name {
			return s, true
		}
	}
	return scenario{}, false
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarioDefs {
		out = append(out, s.Name)
	}
	return out
}

// runner holds what every run shares.
type runner struct {
	o        options
	work     string
	bins     binaries
	certs    certFiles
	procs    *procSet
	upstream *process
	maxConns int
	seq      int
}

// requests returns the requests a scenario sends: one path, or the last routes' requests.
func (sc scenario) requests() []routeRequest {
	if sc.Routes > 0 {
		return lastRequests(manyRoutes(sc.Routes), 3)
	}
	return []routeRequest{{Path: sc.Path}}
}

func (sc scenario) url(addr string) string {
	scheme := "http"
	if sc.Mode == "tls" {
		scheme = "https"
	}
	path := sc.Path
	if path == "" {
		path = "/"
	}
	return scheme + "://" + addr + path
}

// runOne starts proxy p configured for sc, measures one run, and stops it.
func (r *runner) runOne(ctx context.Context, rep int, sc scenario, p proxyDef) Run {
	res := Run{Rep: rep, Scenario: sc.Name, Proxy: p.Name}
	r.seq++
	dir := filepath.Join(r.work, fmt.Sprintf("%03d-%s-%s", r.seq, sc.Name, p.Name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	var routes []Route
	if sc.Routes > 0 {
		routes = manyRoutes(sc.Routes)
	}
	cfg := filepath.Join(dir, p.Config)
	data := newConfigData(dir, sc.Mode, proxyAddr, upstreamAddr, nuncioAdminPort, r.maxConns, r.certs, routes)
	if err := render(filepath.Join(r.o.root, "bench", "configs", p.Template), cfg, data); err != nil {
		res.Error = err.Error()
		return res
	}
	logPath := filepath.Join(dir, "proxy.log")
	logf, err := os.Create(logPath)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer logf.Close()
	var env []string
	if p.Env != nil {
		env = p.Env(dir)
	}
	argv := append([]string{"taskset", "-c", "0"}, p.Argv(r.bins, cfg, dir)...)
	proc, err := r.procs.start(p.Name, argv, env, logf)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer r.procs.stop(proc)
	fail := func(err error) Run {
		res.Error = fmt.Sprintf("%v\n%s", err, tail(logPath, 20))
		return res
	}
	if err := waitListening(ctx, proc, proxyAddr, 15*time.Second); err != nil {
		return fail(err)
	}
	if err := verify(ctx, sc, proxyAddr); err != nil {
		return fail(err)
	}
	if sc.Tool == "idle" {
		if err := r.measureIdle(ctx, proc, &res); err != nil {
			return fail(err)
		}
		return res
	}
	if err := r.measureLoad(ctx, sc, proc, dir, proxyAddr, &res); err != nil {
		return fail(err)
	}
	return res
}

// runDirect measures the upstream without a proxy, for the latency a proxy adds.
func (r *runner) runDirect(ctx context.Context, rep int, sc scenario) Run {
	res := Run{Rep: rep, Scenario: sc.Name, Proxy: "direct"}
	dir := filepath.Join(r.work, fmt.Sprintf("direct-%d", rep))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	if err := r.measureLoad(ctx, sc, nil, dir, upstreamAddr, &res); err != nil {
		res.Error = err.Error()
	}
	return res
}

// measureLoad warms up, then runs the load generator for the measured window, reading the
// CPU time of the proxy (all its processes), the upstream, the runner and the whole machine
// around it.
func (r *runner) measureLoad(ctx context.Context, sc scenario, proxy *process, dir, addr string, res *Run) error {
	script := filepath.Join(dir, "wrk.lua")
	var reqs []routeRequest
	if sc.Routes > 0 {
		reqs = sc.requests()
	}
	if err := wrkScript(script, reqs); err != nil {
		return err
	}
	spec := loadSpec{Tool: sc.Tool, URL: sc.url(addr), Conns: sc.Conns, Streams: sc.Streams, Script: script}
	if r.o.warmup > 0 {
		spec.Duration = r.o.warmup
		if _, err := runLoad(ctx, dir, spec); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	spec.Duration = r.o.duration

	var pids []int
	if proxy != nil {
		pids = treePIDs(proxy.pid())
	}
	// The kernel threads that run deferred softirq work, loopback packet processing included,
	// do work the benchmark caused: count them as ours, not as other load.
	self := append([]int{os.Getpid()}, kernelThreads("ksoftirqd/")...)
	sys0, err := readProcStat()
	if err != nil {
		return err
	}
	proxy0, up0, self0 := cpuTicks(pids), cpuTicks([]int{r.upstream.pid()}), cpuTicks(self)
	t0 := time.Now()
	lr, err := runLoad(ctx, dir, spec)
	wall := time.Since(t0)
	if err != nil {
		return err
	}
	proxy1, up1, self1 := cpuTicks(pids), cpuTicks([]int{r.upstream.pid()}), cpuTicks(self)
	sys1, err := readProcStat()
	if err != nil {
		return err
	}
	if proxy != nil && proxy.exited() {
		return fmt.Errorf("%s exited during the run", proxy.name)
	}

	res.Requests, res.Errors = lr.Requests, lr.Errors
	res.DurationS = lr.Duration.Seconds()
	if lr.Duration > 0 {
		res.RPS = float64(lr.Requests) / lr.Duration.Seconds()
	}
	res.P50US, res.P99US = lr.P50, lr.P99
	if proxy != nil {
		ticks := proxy1 - proxy0
		res.ProxyCPUS = float64(ticks) / clockTick
		if lr.Requests > 0 {
			res.CPUUSPerReq = res.ProxyCPUS * 1e6 / float64(lr.Requests)
		}
		res.PeakRSSKiB = statusKiB(pids, "VmHWM")
	}
	ours := float64((proxy1-proxy0)+(up1-up0)+(self1-self0)) + lr.LoadCPU.Seconds()*clockTick
	busy := float64(sys1.delta(sys0, "cpu0", "cpu1"))
	capacity := wall.Seconds() * clockTick * 2
	res.OtherLoad = max(0, busy-ours) / capacity
	res.Noisy = res.OtherLoad > r.o.noise
	if lr.Requests == 0 {
		return fmt.Errorf("no request completed")
	}
	if float64(lr.Errors) > 0.01*float64(lr.Requests) {
		return fmt.Errorf("%d errors for %d requests", lr.Errors, lr.Requests)
	}
	return nil
}

// measureIdle opens the idle connections and reads how much the proxy's RSS grew.
func (r *runner) measureIdle(ctx context.Context, proxy *process, res *Run) error {
	pids := treePIDs(proxy.pid())
	before := statusKiB(pids, "VmRSS")
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "taskset", "-c", "1", r.bins.idle, "-addr", proxyAddr, "-n", strconv.Itoa(r.o.idleConns), "-path", "/100")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("idleconns: %v\n%s", err, stderr.String())
	}
	var open, failed int
	if _, err := fmt.Sscanf(line, "ready %d %d", &open, &failed); err != nil {
		return fmt.Errorf("idleconns: %q: %v", line, err)
	}
	// Let the proxy settle (a Go proxy's background GC, nginx's deferred frees) before reading.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	pids = treePIDs(proxy.pid())
	after := statusKiB(pids, "VmRSS")
	res.PeakRSSKiB = statusKiB(pids, "VmHWM")
	res.IdleConns = open
	res.RSSBeforeKiB, res.RSSAfterKiB = before, after
	if proxy.exited() {
		return fmt.Errorf("%s exited while holding the connections", proxy.name)
	}
	if failed > open/100 {
		return fmt.Errorf("idleconns: %d of %d connections failed\n%s", failed, r.o.idleConns, stderr.String())
	}
	if open > 0 && after > before {
		res.KiBPerConn = float64(after-before) / float64(open)
	}
	return nil
}

// waitListening waits until addr accepts connections or p exits.
func waitListening(ctx context.Context, p *process, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := dialQuick(addr)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s %w: %v", p.name, errExited, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %s", p.name, addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func dialQuick(addr string) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, 200*time.Millisecond)
}

// verify sends each of the scenario's requests once and checks that the answer is the
// upstream's, over the protocol the scenario is about: a misconfigured proxy answering 404
// quickly would otherwise look fast.
func verify(ctx context.Context, sc scenario, addr string) error {
	var p http.Protocols
	tr := &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	wantMajor := 1
	switch sc.Mode {
	case "h2c":
		p.SetUnencryptedHTTP2(true)
		wantMajor = 2
	case "tls":
		p.SetHTTP2(true)
		wantMajor = 2
	default:
		p.SetHTTP1(true)
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	scheme := "http"
	if sc.Mode == "tls" {
		scheme = "https"
	}
	if sc.Routes > 0 {
		// A header route's path without its header must match nothing: proof that the
		// proxy matches the header rather than the path alone.
		for _, rr := range sc.requests() {
			if len(rr.Headers) == 0 {
				continue
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+rr.Path, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("verify %s without its header: %w", rr.Path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Caddy answers an unmatched request with an empty 200, the others with 404 or
			// 503: what must not come back is the upstream's body.
			if resp.StatusCode == http.StatusOK && len(body) == 100 {
				return fmt.Errorf("verify %s without its header: reached the upstream, want no route", rr.Path)
			}
		}
	}
	for _, rr := range sc.requests() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+rr.Path, nil)
		if err != nil {
			return err
		}
		for k, v := range rr.Headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("verify %s: %w", rr.Path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", rr.Path, err)
		}
		want := 100
		if strings.Contains(rr.Path, "16k") {
			want = 16 << 10
		}
		if resp.StatusCode != http.StatusOK || len(body) != want || resp.ProtoMajor != wantMajor {
			return fmt.Errorf("verify %s: got %s %s with %d bytes, want 200 over HTTP/%d with %d bytes", rr.Path, resp.Proto, resp.Status, len(body), wantMajor, want)
		}
	}
	return nil
}

// tail returns the last n lines of a file, for error reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// versions reports the version of every proxy, for the record.
func (r *runner) versions() map[string]string {
	out := map[string]string{}
	run := func(argv ...string) string {
		b, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		s := strings.TrimSpace(string(b))
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		}
		return s
	}
	for _, p := range r.o.proxies {
		switch p {
		case "nginx":
			out[p] = run("nginx", "-v")
		case "haproxy":
			out[p] = run("haproxy", "-v")
		case "caddy":
			out[p] = run("caddy", "version")
		case "nuncio":
			if r.o.nuncio != "" {
				out[p] = run(r.bins.nuncio, "version") + " (prebuilt " + r.o.nuncio + ")"
				continue
			}
			rev := run("git", "-C", r.o.root, "rev-parse", "--short", "HEAD")
			if dirty := run("git", "-C", r.o.root, "status", "--porcelain", "--", "cmd", "internal"); dirty != "" {
				rev += " (with uncommitted changes)"
			}
			out[p] = "nuncio " + rev
		}
	}
	out["wrk"] = run("wrk", "-v")
	out["h2load"] = run("h2load", "--version")
	return out
}
