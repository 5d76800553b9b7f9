package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/server"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name      string
		line      string
		wantPPID  int
		wantUtime uint64
		wantStime uint64
	}{
		{
			name:      "plain",
			line:      "4242 (nginx) S 4241 4241 4241 0 -1 4194624 123 0 0 0 1500 320 0 0 20 0 1 0 9000 12345678 800 18446744073709551615",
			wantPPID:  4241,
			wantUtime: 1500,
			wantStime: 320,
		},
		{
			name:      "command with spaces and parentheses",
			line:      "77 (nginx: worker (x) ) R 76 76 76 0 -1 4194624 5 0 0 0 7 9 0 0 20 0 1 0 100 1 1 1",
			wantPPID:  76,
			wantUtime: 7,
			wantStime: 9,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.line))
			if err != nil {
				t.Fatal(err)
			}
			if got.PPID != tc.wantPPID || got.Utime != tc.wantUtime || got.Stime != tc.wantStime {
				t.Errorf("parseStat = %+v, want ppid %d utime %d stime %d", got, tc.wantPPID, tc.wantUtime, tc.wantStime)
			}
		})
	}
	if _, err := parseStat([]byte("12 (short) S 1 2")); err == nil {
		t.Error("parseStat of a truncated line: no error")
	}
}

func TestReadOwnStat(t *testing.T) {
	s, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.PPID != os.Getppid() {
		t.Errorf("ppid = %d, want %d", s.PPID, os.Getppid())
	}
	if pids := treePIDs(os.Getpid()); len(pids) == 0 || pids[0] != os.Getpid() {
		t.Errorf("treePIDs = %v, want this process first", pids)
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t   19968 kB\nVmRSS:\t   18000 kB\n"
	for key, want := range map[string]uint64{"VmHWM": 19968, "VmRSS": 18000} {
		got, err := parseStatusKiB([]byte(status), key)
		if err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", key, got, err, want)
		}
	}
	if _, err := parseStatusKiB([]byte(status), "VmSwap"); err == nil {
		t.Error("missing key: no error")
	}
}

func TestProcStatBusy(t *testing.T) {
	before := "cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 10 1 20 500 7 3 4 5 0 0\ncpu1 0 0 0 500 0 0 0 0 0 0\nintr 1 2\n"
	after := "cpu  200 0 200 2000 0 0 0 0 0 0\ncpu0 20 1 30 600 9 3 4 5 0 0\ncpu1 50 0 50 550 0 0 10 0 0 0\nintr 1 2\n"
	b, err := parseProcStat([]byte(before))
	if err != nil {
		t.Fatal(err)
	}
	if b["cpu0"] != 10+1+20+3+4+5 {
		t.Errorf("cpu0 busy = %d, want 43 (idle and iowait excluded)", b["cpu0"])
	}
	if _, ok := b["cpu"]; ok {
		t.Error("the all-CPU line was kept")
	}
	a, err := parseProcStat([]byte(after))
	if err != nil {
		t.Fatal(err)
	}
	if d := a.delta(b, "cpu0", "cpu1"); d != 20+110 {
		t.Errorf("delta = %d, want 130", d)
	}
}

func TestMedianPercentileRatio(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{name: "odd", xs: []float64{3, 1, 2}, want: 2},
		{name: "even", xs: []float64{4, 1, 3, 2}, want: 2.5},
		{name: "one", xs: []float64{7}, want: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.xs); got != tc.want {
				t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
			}
		})
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	sorted := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(sorted, 50); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := percentile(sorted, 99); p != 10 {
		t.Errorf("p99 = %v, want 10", p)
	}
	if r := ratio(15, 12); math.Abs(r-1.25) > 1e-9 {
		t.Errorf("ratio = %v, want 1.25", r)
	}
	if !math.IsNaN(ratio(1, 0)) || !math.IsNaN(ratio(math.NaN(), 1)) {
		t.Error("ratio with a missing or zero figure is not NaN")
	}
}

func TestSummarize(t *testing.T) {
	runs := []Run{
		{Rep: 1, Scenario: "h1-c1", Proxy: "direct", RPS: 50000, P50US: 20, P99US: 40},
		{Rep: 2, Scenario: "h1-c1", Proxy: "direct", RPS: 50000, P50US: 30, P99US: 40},
		{Rep: 1, Scenario: "h1-c1", Proxy: "nginx", RPS: 20000, P50US: 45, P99US: 90, CPUUSPerReq: 14, PeakRSSKiB: 1000},
		{Rep: 2, Scenario: "h1-c1", Proxy: "nginx", RPS: 22000, P50US: 55, P99US: 110, CPUUSPerReq: 16, PeakRSSKiB: 1000},
		{Rep: 3, Scenario: "h1-c1", Proxy: "nginx", RPS: 21000, P50US: 50, P99US: 100, CPUUSPerReq: 15, PeakRSSKiB: 1000, Noisy: true},
		{Rep: 1, Scenario: "h1-c1", Proxy: "nuncio", RPS: 20000, P50US: 75, P99US: 100, CPUUSPerReq: 18, PeakRSSKiB: 2000},
		{Rep: 2, Scenario: "h1-c1", Proxy: "nuncio", Error: "exited"},
		{Rep: 1, Scenario: "idle-10k", Proxy: "nginx", IdleConns: 10, KiBPerConn: 1, PeakRSSKiB: 500},
		{Rep: 1, Scenario: "idle-10k", Proxy: "nuncio", IdleConns: 10, KiBPerConn: 3, PeakRSSKiB: 900},
	}
	sums := summarize(runs, []string{"h1-c1", "idle-10k"}, []string{"direct", "nginx", "haproxy", "nuncio"})
	if len(sums) != 5 {
		t.Fatalf("got %d summaries, want 5 (haproxy has no runs): %+v", len(sums), sums)
	}
	by := map[string]Summary{}
	for _, s := range sums {
		by[s.Scenario+"/"+s.Proxy] = s
	}
	nginx := by["h1-c1/nginx"]
	if nginx.Runs != 3 || nginx.NoisyRuns != 1 || nginx.RPS != 21000 || nginx.CPUUSPerReq != 15 || nginx.P50US != 50 {
		t.Errorf("nginx summary = %+v", nginx)
	}
	if nginx.AddedP50US != 25 {
		t.Errorf("nginx added p50 = %v, want 50 - 25", nginx.AddedP50US)
	}
	nuncio := by["h1-c1/nuncio"]
	if nuncio.Runs != 1 || nuncio.FailedRuns != 1 {
		t.Errorf("nuncio runs = %d, failed %d; want 1, 1", nuncio.Runs, nuncio.FailedRuns)
	}
	for fig, want := range map[string]float64{"cpu_us_per_req": 1.2, "p50_us": 1.5, "added_p50_us": 2, "peak_rss_kib": 2} {
		if got := float64(nuncio.VsNginx[fig]); math.Abs(got-want) > 1e-9 {
			t.Errorf("nuncio ÷ nginx %s = %v, want %v", fig, got, want)
		}
	}
	if got := float64(by["idle-10k/nuncio"].VsNginx["kib_per_conn"]); got != 3 {
		t.Errorf("idle KiB per connection ratio = %v, want 3", got)
	}

	rep := &Report{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Reps: 3, DurationS: 10, IdleConns: 10, Summary: sums}
	md := rep.markdown()
	for _, want := range []string{"| h1-c1 | **nuncio ÷ nginx** | 0.95× | 1.50× (2.00×) | 1.00× | **1.20×** |", "| nuncio | 3.00 |", "3 (1 noisy)", "1 (1 failed)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 10s test @ http://127.0.0.1:18080/100\n  1 threads and 50 connections\nBENCHJSON {\"requests\":512345,\"duration_us\":10000123,\"p50_us\":812,\"p99_us\":2345,\"errors\":0}\n"
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 512345 || r.P50 != 812 || r.P99 != 2345 || r.Duration != 10000123*time.Microsecond {
		t.Errorf("parseWrk = %+v", r)
	}
	if _, err := parseWrk([]byte("unable to connect")); err == nil {
		t.Error("no result line: no error")
	}
}

func TestParseH2load(t *testing.T) {
	out := `finished in 10.00s, 30000.00 req/s, 3.00MB/s
requests: 300010 total, 300110 started, 300010 done, 300000 succeeded, 10 failed, 2 errored, 1 timeout
status codes: 300000 2xx, 0 3xx, 10 4xx, 0 5xx
`
	// h2load's per-request log: start time, status, duration in µs; here 10, 20, …, 1000.
	var log strings.Builder
	for i := 1; i <= 100; i++ {
		log.WriteString("1700000000000000\t200\t" + strconv.Itoa(i*10) + "\n")
	}
	r, err := parseH2load([]byte(out), []byte(log.String()))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 300000 || r.Errors != 10+10+2+1 || r.Duration != 10*time.Second {
		t.Errorf("parseH2load = %+v", r)
	}
	if r.P50 != 500 || r.P99 != 990 {
		t.Errorf("p50, p99 = %v, %v; want 500, 990", r.P50, r.P99)
	}
}

func TestManyRoutes(t *testing.T) {
	rs := manyRoutes(1000)
	kinds := map[string]int{}
	for _, r := range rs {
		kinds[r.Kind]++
	}
	if kinds["prefix"] < 300 || kinds["regex"] < 300 || kinds["header"] < 300 {
		t.Errorf("kinds = %v, want all three mixed", kinds)
	}
	reqs := lastRequests(rs, 3)
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3", len(reqs))
	}
	// Each request matches its route and no earlier one.
	for i, req := range reqs {
		target := rs[len(rs)-3+i]
		for j, r := range rs {
			if matches(r, req) != (j == target.Index) {
				t.Errorf("request %+v: route %d matches = %v", req, j, j != target.Index)
			}
		}
	}
}

// matches is the routes' meaning, as every proxy's configuration encodes it.
func matches(r Route, req routeRequest) bool {
	switch r.Kind {
	case "prefix":
		return strings.HasPrefix(req.Path, r.Prefix)
	case "regex":
		return req.Path == "/r/"+strconv.Itoa(r.Index)+"/abc"
	default:
		return strings.HasPrefix(req.Path, r.Prefix) && req.Headers[r.Header] == r.HeaderValue
	}
}

// TestConfigsValidate renders every proxy's configuration for every listener mode, with one
// route and with the 1,000 routes, and has each proxy check it: Nuncio through the code
// `nuncio validate` runs, the others with their own binaries when they are installed.
func TestConfigsValidate(t *testing.T) {
	dir := t.TempDir()
	certs, err := writeCert(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkers := map[string]func(cfg, dir string) error{
		"nuncio": func(cfg, _ string) error {
			_, _, err := server.Load(cfg, httpfilter.Default)
			return err
		},
		"nginx": func(cfg, dir string) error {
			return runCheck("nginx", "-t", "-q", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", cfg)
		},
		"haproxy": func(cfg, _ string) error { return runCheck("haproxy", "-c", "-q", "-f", cfg) },
		"caddy": func(cfg, dir string) error {
			return runCheckEnv([]string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir},
				"caddy", "validate", "--config", cfg, "--adapter", "caddyfile")
		},
	}
	for _, p := range proxyDefs {
		for _, mode := range []string{"h1", "h2c", "tls"} {
			for _, n := range []int{0, 1000} {
				t.Run(p.Name+"/"+mode+"/"+strconv.Itoa(n), func(t *testing.T) {
					if p.Bin != "" {
						if _, err := exec.LookPath(p.Bin); err != nil {
							t.Skipf("%s not installed", p.Bin)
						}
					}
					if n > 0 && mode != "h1" {
						if testing.Short() {
							t.Skip("short: the 1,000 routes are checked over HTTP/1.1 only")
						}
					}
					d := t.TempDir()
					var routes []Route
					if n > 0 {
						routes = manyRoutes(n)
					}
					cfg := filepath.Join(d, p.Config)
					data := newConfigData(d, mode, "127.0.0.1:18080", "127.0.0.1:18000", 18901, 20000, certs, routes)
					if err := render(filepath.Join("..", "..", "configs", p.Template), cfg, data); err != nil {
						t.Fatal(err)
					}
					b, err := os.ReadFile(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if n > 0 && !strings.Contains(string(b), "999") {
						t.Errorf("%s: the last route is missing", cfg)
					}
					if err := checkers[p.Name](cfg, d); err != nil {
						t.Errorf("%s rejects its configuration: %v\n%s", p.Name, err, b)
					}
				})
			}
		}
	}
}

func runCheck(argv ...string) error { return runCheckEnv(nil, argv...) }

func runCheckEnv(env []string, argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &checkError{err: err, out: string(out)}
	}
	return nil
}

type checkError struct {
	err error
	out string
}

func (e *checkError) Error() string { return e.err.Error() + ": " + e.out }

func TestWrkScript(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wrk.lua")
	reqs := lastRequests(manyRoutes(10), 3)
	if err := wrkScript(path, reqs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`wrk.format("GET", "/p/9/x", {})`, `["x-bench-route"] = "8"`, "request = function()", "BENCHJSON"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("script lacks %q:\n%s", want, b)
		}
	}
}
