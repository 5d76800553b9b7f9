package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Run is one measured run of one proxy in one scenario.
type Run struct {
	Rep          int     `json:"rep"`
	Scenario     string  `json:"scenario"`
	Proxy        string  `json:"proxy"`
	Requests     int64   `json:"requests,omitempty"`
	Errors       int64   `json:"errors,omitempty"`
	DurationS    float64 `json:"duration_s,omitempty"`
	RPS          float64 `json:"rps,omitempty"`
	P50US        float64 `json:"p50_us,omitempty"`
	P99US        float64 `json:"p99_us,omitempty"`
	ProxyCPUS    float64 `json:"proxy_cpu_s,omitempty"`
	CPUUSPerReq  float64 `json:"cpu_us_per_req,omitempty"`
	PeakRSSKiB   uint64  `json:"peak_rss_kib,omitempty"`
	IdleConns    int     `json:"idle_conns,omitempty"`
	RSSBeforeKiB uint64  `json:"rss_before_kib,omitempty"`
	RSSAfterKiB  uint64  `json:"rss_after_kib,omitempty"`
	KiBPerConn   float64 `json:"kib_per_conn,omitempty"`
	OtherLoad    float64 `json:"other_load"` // share of CPUs 0 and 1 used by other processes
	Noisy        bool    `json:"noisy,omitempty"`
	Error        string  `json:"error,omitempty"`
}

func (r Run) line() string {
	if r.Error != "" {
		return fmt.Sprintf("%s %s rep %d: FAILED: %s", r.Scenario, r.Proxy, r.Rep, r.Error)
	}
	if r.IdleConns > 0 {
		return fmt.Sprintf("%s %s rep %d: %d conns, %.2f KiB/conn", r.Scenario, r.Proxy, r.Rep, r.IdleConns, r.KiBPerConn)
	}
	noisy := ""
	if r.Noisy {
		noisy = " NOISY"
	}
	return fmt.Sprintf("%s %s rep %d: %.0f req/s, p50 %.0f µs, p99 %.0f µs, %.1f CPU µs/req, other load %.0f%%%s",
		r.Scenario, r.Proxy, r.Rep, r.RPS, r.P50US, r.P99US, r.CPUUSPerReq, r.OtherLoad*100, noisy)
}

// num is a figure that may be missing; it is written to JSON as null then.
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(math.Round(float64(n)*1000) / 1000)
}

// Summary is the medians of one proxy's runs in one scenario.
type Summary struct {
	Scenario    string `json:"scenario"`
	Proxy       string `json:"proxy"`
	Runs        int    `json:"runs"`
	NoisyRuns   int    `json:"noisy_runs"`
	FailedRuns  int    `json:"failed_runs"`
	RPS         num    `json:"rps"`
	P50US       num    `json:"p50_us"`
	P99US       num    `json:"p99_us"`
	AddedP50US  num    `json:"added_p50_us"` // p50 minus the upstream's own (one request in flight)
	CPUUSPerReq num    `json:"cpu_us_per_req"`
	PeakRSSKiB  num    `json:"peak_rss_kib"`
	KiBPerConn  num    `json:"kib_per_conn"`
	// VsNginx is this proxy's figure divided by nginx's, per figure.
	VsNginx map[string]num `json:"vs_nginx,omitempty"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	NProc      int               `json:"nproc"`
	CPU        string            `json:"cpu"`
	Kernel     string            `json:"kernel"`
	LoadBefore string            `json:"loadavg_before"`
	LoadAfter  string            `json:"loadavg_after"`
	Versions   map[string]string `json:"versions"`
}

// Report is the JSON the runner writes.
type Report struct {
	Date       time.Time `json:"date"`
	Machine    Machine   `json:"machine"`
	DurationS  float64   `json:"run_duration_s"`
	Reps       int       `json:"reps"`
	IdleConns  int       `json:"idle_conns"`
	NoiseLimit float64   `json:"noise_limit"`
	TotalS     float64   `json:"total_s"`
	Summary    []Summary `json:"summary"`
	Runs       []Run     `json:"runs"`

	proxies   []string
	scenarios []string
	failures  int
}

func newReport(o options, versions map[string]string) *Report {
	return &Report{
		Date: time.Now(),
		Machine: Machine{
			NProc: runtime.NumCPU(), CPU: cpuModel(), Kernel: readTrim("/proc/sys/kernel/osrelease"),
			LoadBefore: readTrim("/proc/loadavg"), Versions: versions,
		},
		DurationS: o.duration.Seconds(), Reps: o.reps, IdleConns: o.idleConns, NoiseLimit: o.noise,
		proxies: o.proxies, scenarios: o.scenarios,
	}
}

func (r *Report) add(run Run) {
	r.Runs = append(r.Runs, run)
	if run.Error != "" {
		r.failures++
	}
}

// finish computes the medians and the ratios to nginx.
func (r *Report) finish(total time.Duration) {
	r.TotalS = math.Round(total.Seconds())
	r.Machine.LoadAfter = readTrim("/proc/loadavg")
	r.Summary = summarize(r.Runs, r.scenarios, append([]string{"direct"}, r.proxies...))
}

// summarize takes, per scenario and proxy, the median of every figure over the runs that did
// not fail, then divides each proxy's medians by nginx's.
func summarize(runs []Run, scenarios, proxies []string) []Summary {
	var out []Summary
	for _, sc := range scenarios {
		var direct, nginx *Summary
		start := len(out)
		for _, p := range proxies {
			s := Summary{Scenario: sc, Proxy: p}
			var rps, p50, p99, cpu, rss, kib []float64
			for _, run := range runs {
				if run.Scenario != sc || run.Proxy != p {
					continue
				}
				if run.Error != "" {
					s.FailedRuns++
					continue
				}
				s.Runs++
				if run.Noisy {
					s.NoisyRuns++
				}
				if run.IdleConns > 0 {
					kib = append(kib, run.KiBPerConn)
				} else {
					rps, p50, p99 = append(rps, run.RPS), append(p50, run.P50US), append(p99, run.P99US)
					if p != "direct" {
						cpu = append(cpu, run.CPUUSPerReq)
					}
				}
				if run.PeakRSSKiB > 0 {
					rss = append(rss, float64(run.PeakRSSKiB))
				}
			}
			if s.Runs+s.FailedRuns == 0 {
				continue
			}
			s.RPS, s.P50US, s.P99US = num(median(rps)), num(median(p50)), num(median(p99))
			s.CPUUSPerReq, s.PeakRSSKiB, s.KiBPerConn = num(median(cpu)), num(median(rss)), num(median(kib))
			s.AddedP50US = num(math.NaN())
			out = append(out, s)
		}
		for i := start; i < len(out); i++ {
			switch out[i].Proxy {
			case "direct":
				direct = &out[i]
			case "nginx":
				nginx = &out[i]
			}
		}
		for i := start; i < len(out); i++ {
			s := &out[i]
			if direct != nil && s.Proxy != "direct" {
				s.AddedP50US = num(float64(s.P50US) - float64(direct.P50US))
			}
			if nginx == nil || s.Proxy == "nginx" || s.Proxy == "direct" {
				continue
			}
			s.VsNginx = map[string]num{
				"rps":            num(ratio(float64(s.RPS), float64(nginx.RPS))),
				"p50_us":         num(ratio(float64(s.P50US), float64(nginx.P50US))),
				"p99_us":         num(ratio(float64(s.P99US), float64(nginx.P99US))),
				"cpu_us_per_req": num(ratio(float64(s.CPUUSPerReq), float64(nginx.CPUUSPerReq))),
				"peak_rss_kib":   num(ratio(float64(s.PeakRSSKiB), float64(nginx.PeakRSSKiB))),
				"kib_per_conn":   num(ratio(float64(s.KiBPerConn), float64(nginx.KiBPerConn))),
			}
			if direct != nil {
				s.VsNginx["added_p50_us"] = num(ratio(float64(s.AddedP50US), float64(nginx.AddedP50US)))
			}
		}
	}
	return out
}

// markdown renders the summary as the tables docs/performance.md holds.
func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d × %s, Linux %s; load average before: %s. %d repetitions of %s per run, medians.\n\n",
		r.Date.Format("2006-01-02 15:04 MST"), r.Machine.NProc, r.Machine.CPU, r.Machine.Kernel,
		firstFields(r.Machine.LoadBefore, 3), r.Reps, time.Duration(r.DurationS*float64(time.Second)))
	b.WriteString("| Scenario | Proxy | req/s | p50 µs | p99 µs | CPU µs/req | peak RSS MiB | runs |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	var idle []Summary
	for _, s := range r.Summary {
		if s.Scenario == "idle-10k" {
			idle = append(idle, s)
			continue
		}
		p50 := fmtNum(float64(s.P50US), 0)
		if !math.IsNaN(float64(s.AddedP50US)) {
			p50 += fmt.Sprintf(" (+%s)", fmtNum(float64(s.AddedP50US), 0))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Scenario, s.Proxy,
			fmtNum(float64(s.RPS), 0), p50, fmtNum(float64(s.P99US), 0), fmtNum(float64(s.CPUUSPerReq), 1),
			fmtNum(float64(s.PeakRSSKiB)/1024, 1), runsCell(s))
		if s.Proxy == "nuncio" && s.VsNginx != nil {
			v := s.VsNginx
			p50r := fmtRatio(v["p50_us"])
			if a, ok := v["added_p50_us"]; ok {
				p50r += " (" + fmtRatio(a) + ")"
			}
			fmt.Fprintf(&b, "| %s | **nuncio ÷ nginx** | %s | %s | %s | **%s** | %s | |\n", s.Scenario,
				fmtRatio(v["rps"]), p50r, fmtRatio(v["p99_us"]), fmtRatio(v["cpu_us_per_req"]), fmtRatio(v["peak_rss_kib"]))
		}
	}
	if len(idle) > 0 {
		fmt.Fprintf(&b, "\n%d idle HTTP/1.1 keep-alive connections (one request each, then idle):\n\n", r.IdleConns)
		b.WriteString("| Proxy | KiB per connection | peak RSS MiB | nuncio ÷ nginx | runs |\n")
		b.WriteString("| --- | ---: | ---: | ---: | --- |\n")
		for _, s := range idle {
			ratio := ""
			if s.Proxy == "nuncio" && s.VsNginx != nil {
				ratio = fmtRatio(s.VsNginx["kib_per_conn"])
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Proxy, fmtNum(float64(s.KiBPerConn), 2),
				fmtNum(float64(s.PeakRSSKiB)/1024, 1), ratio, runsCell(s))
		}
	}
	return b.String()
}

func runsCell(s Summary) string {
	var notes []string
	if s.NoisyRuns > 0 {
		notes = append(notes, fmt.Sprintf("%d noisy", s.NoisyRuns))
	}
	if s.FailedRuns > 0 {
		notes = append(notes, fmt.Sprintf("%d failed", s.FailedRuns))
	}
	if len(notes) == 0 {
		return fmt.Sprint(s.Runs)
	}
	return fmt.Sprintf("%d (%s)", s.Runs, strings.Join(notes, ", "))
}

func fmtNum(v float64, prec int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func fmtRatio(v num) string {
	if math.IsNaN(float64(v)) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(v))
}

func (r *Report) write(path, md string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(strings.TrimSuffix(path, ".json")+".md", []byte(md), 0o644)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func firstFields(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}
