package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loadResult is what one load-generator run measured.
type loadResult struct {
	Requests int64         // completed requests
	Errors   int64         // failed requests: connect/read/write errors, timeouts, non-2xx
	Duration time.Duration // as the load generator measured it
	P50, P99 float64       // latency in microseconds
	LoadCPU  time.Duration // the load generator's own CPU time
}

// wrkScript writes the Lua script wrk runs: done() prints the figures as one JSON line, and
// when reqs is not empty request() cycles through them.
func wrkScript(path string, reqs []routeRequest) error {
	var b strings.Builder
	b.WriteString("-- Written by bench/cmd/benchrun.\n")
	if len(reqs) > 0 {
		b.WriteString("local reqs = {}\nlocal n = 0\n\ninit = function(args)\n")
		for _, r := range reqs {
			keys := make([]string, 0, len(r.Headers))
			for k := range r.Headers {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			var hs []string
			for _, k := range keys {
				hs = append(hs, fmt.Sprintf("[%q] = %q", k, r.Headers[k]))
			}
			fmt.Fprintf(&b, "  table.insert(reqs, wrk.format(\"GET\", %q, {%s}))\n", r.Path, strings.Join(hs, ", "))
		}
		b.WriteString("end\n\nrequest = function()\n  n = n % #reqs + 1\n  return reqs[n]\nend\n\n")
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

type wrkJSON struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	Errors     int64   `json:"errors"`
}

// parseWrk reads the line the done() of wrkScript printed.
func parseWrk(out []byte) (loadResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "BENCHJSON ")
		if !ok {
			continue
		}
		var w wrkJSON
		if err := json.Unmarshal([]byte(rest), &w); err != nil {
			return loadResult{}, fmt.Errorf("wrk: %w", err)
		}
		return loadResult{
			Requests: w.Requests, Errors: w.Errors,
			Duration: time.Duration(w.DurationUS) * time.Microsecond,
			P50:      w.P50US, P99: w.P99US,
		}, nil
	}
	return loadResult{}, fmt.Errorf("wrk: no result line in output:\n%s", out)
}

var h2loadRequests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
var h2loadStatus = regexp.MustCompile(`status codes: (\d+) 2xx`)
var h2loadFinished = regexp.MustCompile(`finished in ([0-9.]+)(s|ms)`)

// parseH2load reads h2load's summary, and latencies from its per-request log file (h2load
// prints no percentiles): tab-separated start time, status and duration in microseconds.
func parseH2load(out, log []byte) (loadResult, error) {
	m := h2loadRequests.FindSubmatch(out)
	if m == nil {
		return loadResult{}, fmt.Errorf("h2load: no requests line in output:\n%s", out)
	}
	done, _ := strconv.ParseInt(string(m[3]), 10, 64)
	ok := done
	if s := h2loadStatus.FindSubmatch(out); s != nil {
		ok, _ = strconv.ParseInt(string(s[1]), 10, 64)
	}
	r := loadResult{Requests: ok, Errors: done - ok}
	for _, i := range []int{5, 6, 7} {
		n, _ := strconv.ParseInt(string(m[i]), 10, 64)
		r.Errors += n
	}
	if f := h2loadFinished.FindSubmatch(out); f != nil {
		v, _ := strconv.ParseFloat(string(f[1]), 64)
		if string(f[2]) == "ms" {
			v /= 1000
		}
		r.Duration = time.Duration(v * float64(time.Second))
	}
	var lat []float64
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 3 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64); err == nil {
			lat = append(lat, v)
		}
	}
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 50), percentile(lat, 99)
	return r, nil
}

// loadSpec is one load-generator invocation.
type loadSpec struct {
	Tool     string // "wrk" or "h2load"
	URL      string
	Conns    int
	Streams  int // concurrent streams per connection (h2load)
	Duration time.Duration
	Script   string // wrk Lua script
}

// runLoad runs the load generator pinned to CPU 1 and returns its figures.
func runLoad(ctx context.Context, dir string, s loadSpec) (loadResult, error) {
	secs := strconv.Itoa(max(1, int(s.Duration.Round(time.Second)/time.Second)))
	var argv []string
	logFile := filepath.Join(dir, "h2load.log")
	switch s.Tool {
	case "wrk":
		argv = []string{"wrk", "-t1", "-c" + strconv.Itoa(s.Conns), "-d" + secs + "s", "--timeout", "5s", "-s", s.Script, s.URL}
	case "h2load":
		_ = os.Remove(logFile)
		argv = []string{"h2load", "-t1", "-c" + strconv.Itoa(s.Conns), "-m" + strconv.Itoa(s.Streams), "-D", secs, "--log-file=" + logFile, s.URL}
	default:
		return loadResult{}, fmt.Errorf("unknown load generator %q", s.Tool)
	}
	argv = append([]string{"taskset", "-c", "1"}, argv...)
	// Bounded in time by its own duration flag; the context only cuts it short on interrupt
	// or when it hangs well past that.
	ctx, cancel := context.WithTimeout(ctx, s.Duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return loadResult{}, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out.Bytes())
	}
	var r loadResult
	var err error
	if s.Tool == "wrk" {
		r, err = parseWrk(out.Bytes())
	} else {
		var log []byte
		log, err = os.ReadFile(logFile)
		if err == nil {
			r, err = parseH2load(out.Bytes(), log)
		}
	}
	if err != nil {
		return loadResult{}, err
	}
	r.LoadCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}
