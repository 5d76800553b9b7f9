// Command benchrun is Nuncio's side-by-side benchmark: it runs nginx, HAProxy, Caddy and Nuncio
// in turn in front of the same upstream, with equivalent configurations (bench/configs), each
// proxy pinned to CPU 0 and the load generator and upstream to CPU 1, and reports throughput,
// latency, proxy CPU time per request, peak memory and memory per idle connection, with
// Nuncio's ratio to nginx on each figure. `make bench` runs it from the repository root;
// docs/performance.md explains the method and holds the latest results.
//
// Every figure is the median over interleaved repetitions (A B C D A B C D …), so that a slow
// drift in the machine's state spreads over all proxies instead of landing on one. A run is
// flagged noisy when processes other than the benchmark's used a noticeable share of the two
// CPUs during it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Loopback addresses the benchmark uses; checked to be free before anything starts.
const (
	upstreamAddr    = "127.0.0.1:18000"
	upstreamH2CAddr = "127.0.0.1:18001"
	proxyAddr       = "127.0.0.1:18080"
	nuncioAdminPort = 18901
)

type options struct {
	root      string
	duration  time.Duration
	warmup    time.Duration
	reps      int
	proxies   []string
	scenarios []string
	idleConns int
	noise     float64
	out       string
	install   bool
	keep      bool
	nuncio    string
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	quick := os.Getenv("QUICK") == "1"
	o := options{}
	defDuration, defReps := 10*time.Second, 3
	if quick {
		defDuration, defReps = 3*time.Second, 1
	}
	flag.StringVar(&o.root, "root", ".", "repository root (where go.mod and bench/configs are)")
	flag.DurationVar(&o.duration, "duration", envDuration("BENCH_DURATION", defDuration), "measured length of each load run (env BENCH_DURATION; QUICK=1: 3s)")
	flag.DurationVar(&o.warmup, "warmup", envDuration("BENCH_WARMUP", time.Second), "unmeasured load before each run (env BENCH_WARMUP)")
	flag.IntVar(&o.reps, "reps", envInt("BENCH_REPS", defReps), "repetitions of every run (env BENCH_REPS; QUICK=1: 1)")
	proxies := flag.String("proxies", envString("BENCH_PROXIES", "nginx,haproxy,caddy,nuncio"), "proxies to run, in this order (env BENCH_PROXIES)")
	scenarios := flag.String("scenarios", envString("BENCH_SCENARIOS", strings.Join(scenarioNames(), ",")), "scenarios to run (env BENCH_SCENARIOS)")
	flag.IntVar(&o.idleConns, "idle-conns", envInt("BENCH_IDLE_CONNS", 10000), "connections held idle in the idle scenario (env BENCH_IDLE_CONNS)")
	flag.Float64Var(&o.noise, "noise", envFloat("BENCH_NOISE", 0.10), "flag a run noisy when other processes used more than this share of the two CPUs (env BENCH_NOISE)")
	flag.StringVar(&o.out, "out", "", "JSON results file (default bench/results/<date>.json)")
	flag.BoolVar(&o.install, "install", os.Getenv("BENCH_INSTALL") != "0", "install missing proxies and load generators with apt-get (env BENCH_INSTALL=0 to skip)")
	flag.BoolVar(&o.keep, "keep", os.Getenv("BENCH_KEEP") == "1", "keep the scratch directory with configs and logs (env BENCH_KEEP=1)")
	flag.StringVar(&o.nuncio, "nuncio", os.Getenv("BENCH_NUNCIO"), "a prebuilt nuncio binary to run instead of building ./cmd/nuncio (env BENCH_NUNCIO)")
	flag.Parse()
	o.proxies = splitList(*proxies)
	o.scenarios = splitList(*scenarios)
	if o.reps < 1 || o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "benchrun: need -reps >= 1 and -duration >= 1s")
		return 2
	}
	for _, p := range o.proxies {
		if _, ok := proxyByName(p); !ok {
			fmt.Fprintf(os.Stderr, "benchrun: unknown proxy %q\n", p)
			return 2
		}
	}
	for _, s := range o.scenarios {
		if _, ok := scenarioByName(s); !ok {
			fmt.Fprintf(os.Stderr, "benchrun: unknown scenario %q (have %s)\n", s, strings.Join(scenarioNames(), ", "))
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	if _, err := os.Stat(filepath.Join(o.root, "go.mod")); err != nil {
		return fmt.Errorf("run from the repository root (or pass -root): %w", err)
	}
	if o.install {
		if err := installMissing(o.proxies); err != nil {
			return err
		}
	}
	raiseNoFile(uint64(o.idleConns)*3 + 1024)
	for _, a := range []string{upstreamAddr, upstreamH2CAddr, proxyAddr, fmt.Sprintf("127.0.0.1:%d", nuncioAdminPort)} {
		if err := checkFree(a); err != nil {
			return err
		}
	}

	work, err := os.MkdirTemp("", "nuncio-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "benchrun: scratch directory", work)
	} else {
		defer os.RemoveAll(work)
	}
	procs := newProcSet()
	defer procs.stopAll()

	bins, err := build(ctx, o.root, work, o.nuncio)
	if err != nil {
		return err
	}
	certs, err := writeCert(work)
	if err != nil {
		return err
	}

	upLog, err := os.Create(filepath.Join(work, "upstream.log"))
	if err != nil {
		return err
	}
	defer upLog.Close()
	up, err := procs.start("upstream", []string{"taskset", "-c", "1", bins.upstream, "-h1", upstreamAddr, "-h2c", upstreamH2CAddr}, nil, upLog)
	if err != nil {
		return err
	}
	if err := waitListening(ctx, up, upstreamAddr, 10*time.Second); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}

	r := &runner{o: o, work: work, bins: bins, certs: certs, procs: procs, upstream: up, maxConns: noFile()}
	if r.maxConns < o.idleConns+1024 {
		fmt.Fprintf(os.Stderr, "benchrun: warning: the open-file limit (%d) is low for %d idle connections; raise it with ulimit -n\n", r.maxConns, o.idleConns)
	}
	rep := newReport(o, r.versions())
	total := o.reps * len(o.scenarios) * len(o.proxies)
	fmt.Fprintf(os.Stderr, "benchrun: %d repetitions × %d scenarios × %d proxies, %s each\n", o.reps, len(o.scenarios), len(o.proxies), o.duration)
	n := 0
	for i := 1; i <= o.reps; i++ {
		for _, sn := range o.scenarios {
			sc, _ := scenarioByName(sn)
			if sc.Name == "h1-c1" {
				// The upstream alone, for the latency a proxy adds.
				res := r.runDirect(ctx, i, sc)
				rep.add(res)
			}
			for _, pn := range o.proxies {
				if err := ctx.Err(); err != nil {
					return err
				}
				n++
				p, _ := proxyByName(pn)
				res := r.runOne(ctx, i, sc, p)
				rep.add(res)
				fmt.Fprintf(os.Stderr, "benchrun: [%d/%d] %s\n", n, total, res.line())
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rep.finish(time.Since(start))
	md := rep.markdown()
	fmt.Print(md)
	out := o.out
	if out == "" {
		out = filepath.Join(o.root, "bench", "results", rep.Date.Format("2006-01-02T150405")+".json")
	}
	if err := rep.write(out, md); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchrun: wrote %s (%s in all)\n", out, time.Since(start).Round(time.Second))
	if rep.failures > 0 {
		return fmt.Errorf("%d runs failed; see the JSON for their errors", rep.failures)
	}
	return nil
}

type binaries struct{ nuncio, upstream, idle string }

// build compiles Nuncio and the benchmark's own programs into dir, so that no `go run`
// wrapper process sits between the runner and what it measures.
func build(ctx context.Context, root, dir, nuncio string) (binaries, error) {
	b := binaries{
		nuncio:   filepath.Join(dir, "nuncio"),
		upstream: filepath.Join(dir, "upstream"),
		idle:     filepath.Join(dir, "idleconns"),
	}
	pkgs := map[string]string{b.nuncio: "./cmd/nuncio", b.upstream: "./bench/upstream", b.idle: "./bench/idleconns"}
	if nuncio != "" {
		abs, err := filepath.Abs(nuncio)
		if err != nil {
			return b, err
		}
		b.nuncio = abs
		delete(pkgs, filepath.Join(dir, "nuncio"))
	}
	for out, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = root
		if o, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", pkg, err, o)
		}
	}
	return b, nil
}

func checkFree(addr string) error {
	c, err := dialQuick(addr)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use: another benchmark or server is running", addr)
	}
	return nil
}

// raiseNoFile lifts the open-file limit, soft and (as root) hard, to at least want; the
// processes the runner starts inherit it. `make bench` raises it with ulimit -n as well. The
// limit is set even when already high enough: Go raises its own soft limit at start-up but
// gives children the original one unless the program sets the limit itself.
func raiseNoFile(want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return
		}
	}
	lim.Cur = max(lim.Cur, min(want, lim.Max))
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// noFile returns the soft limit on open files.
func noFile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	return int(min(lim.Cur, 1<<20))
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return n
	}
	return def
}

func envFloat(k string, def float64) float64 {
	if f, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
		return f
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second
	}
	return def
}

var errExited = errors.New("exited before it was ready")
