package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The resilience tests run real upstream processes (testdata/upstream) that are killed with
// SIGKILL and restarted on the same port while nuncio carries a bounded load, and assert
// counts: client-visible errors, which upstream answered, what /clusters shows. They do not
// assert timings.

var (
	upstreamOnce sync.Once
	upstreamBin  string
	upstreamErr  error
)

func buildUpstream(t testing.TB) string {
	t.Helper()
	upstreamOnce.Do(func() {
		// Beside the nuncio binary, so TestMain's cleanup removes it too.
		upstreamBin = filepath.Join(filepath.Dir(binPath), "upstream")
		out, err := exec.Command("go", "build", "-o", upstreamBin, "./testdata/upstream").CombinedOutput()
		if err != nil {
			upstreamErr = fmt.Errorf("building the upstream: %v\n%s", err, out)
		}
	})
	if upstreamErr != nil {
		t.Fatal(upstreamErr)
	}
	return upstreamBin
}

// upstreamProc is one upstream process on a fixed port.
type upstreamProc struct {
	t    testing.TB
	name string
	port int
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startUpstream(t testing.TB, name string, args ...string) *upstreamProc {
	t.Helper()
	u := &upstreamProc{t: t, name: name, port: freePort(t), args: args}
	u.start()
	t.Cleanup(u.kill)
	return u
}

func (u *upstreamProc) addr() string { return "127.0.0.1:" + strconv.Itoa(u.port) }

// start runs the process and waits until it listens. The port was just released by a killed
// process at most, so binding may briefly fail; it tries again.
func (u *upstreamProc) start() {
	u.t.Helper()
	for try := 0; ; try++ {
		args := append([]string{"-addr", u.addr(), "-name", u.name}, u.args...)
		cmd := exec.Command(buildUpstream(u.t), args...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			u.t.Fatal(err)
		}
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			u.t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if strings.HasPrefix(line, "listening") {
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, stdout)
				cmd.Wait()
				close(done)
			}()
			u.mu.Lock()
			u.cmd, u.done = cmd, done
			u.mu.Unlock()
			return
		}
		cmd.Wait()
		if try == 50 {
			u.t.Fatalf("upstream %s did not start on %s", u.name, u.addr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (u *upstreamProc) kill() {
	u.mu.Lock()
	cmd, done := u.cmd, u.done
	u.cmd = nil
	u.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// loadResult counts a load run's outcomes.
type loadResult struct {
	mu     sync.Mutex
	total  int
	errors []string
	by     map[string]int // answers per upstream name
}

func (r *loadResult) add(upstream string, err string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if err != "" {
		if len(r.errors) < 20 {
			r.errors = append(r.errors, err)
		}
		r.by["error"]++
		return
	}
	r.by[upstream]++
}

// runLoad sends n GET requests at rate per second (each on its own goroutine, so a slow
// answer does not lower the rate) and returns when all have finished. tick, if set, is called
// with the index of each request before it is sent, to schedule chaos at fixed points.
func runLoad(t testing.TB, url string, n, rate int, tick func(i int)) *loadResult {
	t.Helper()
	res := &loadResult{by: map[string]int{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var wg sync.WaitGroup
	ticker := time.NewTicker(time.Second / time.Duration(rate))
	defer ticker.Stop()
	for i := range n {
		if tick != nil {
			tick(i)
		}
		<-ticker.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err != nil {
				res.add("", err.Error())
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				res.add("", fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(body))))
				return
			}
			res.add(resp.Header.Get("x-upstream"), "")
		}()
	}
	wg.Wait()
	return res
}

// resilienceConfig is a listener on port "http" forwarding to cluster "app" over the given
// upstreams, with the route's retry policy (Data.Retry, YAML) and optional cluster extras
// (Data.Cluster, YAML).
const resilienceConfig = `
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "http"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                route:
                  cluster: app
                  timeout: 10s
                  retry_policy: {{.Data.Retry}}
{{template "router"}}
  clusters:
  - name: app
    connect_timeout: 1s
{{.Data.Cluster}}
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
{{range .Data.Upstreams}}        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.}}}}}
{{end}}`

const retryAll = `{retry_on: "connect-failure,reset,5xx", num_retries: 3, retry_back_off: {base_interval: 0.01s, max_interval: 0.05s}, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], host_selection_retry_max_attempts: 5}`

func ports(us ...*upstreamProc) []int {
	var out []int
	for _, u := range us {
		out = append(out, u.port)
	}
	return out
}

func checkNoErrors(t *testing.T, res *loadResult) {
	t.Helper()
	res.mu.Lock()
	defer res.mu.Unlock()
	if res.by["error"] != 0 {
		t.Fatalf("%d of %d requests failed, e.g.:\n%s", res.by["error"], res.total, strings.Join(res.errors, "\n"))
	}
	t.Logf("%d requests, all answered: %v", res.total, res.by)
}

func TestResilienceUpstreamKilledAndRestarted(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	p := startProxy(t, resilienceConfig, map[string]any{
		"Retry": retryAll, "Cluster": "", "Upstreams": ports(a, b),
	})
	res := runLoad(t, p.url("http", "/"), 400, 100, func(i int) {
		switch i {
		case 100:
			a.kill()
		case 250:
			a.start()
		}
	})
	checkNoErrors(t, res)
	if res.by["b"] == 0 || res.by["a"] == 0 {
		t.Errorf("answers %v: both upstreams should have served", res.by)
	}
}

func TestResilienceSlowUpstreamPerTryTimeout(t *testing.T) {
	slow := startUpstream(t, "slow", "-delay", "3s")
	fast := startUpstream(t, "fast")
	p := startProxy(t, resilienceConfig, map[string]any{
		"Retry":     `{retry_on: "5xx", num_retries: 2, per_try_timeout: 0.2s, retry_back_off: {base_interval: 0.01s}, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}], host_selection_retry_max_attempts: 5}`,
		"Cluster":   "",
		"Upstreams": ports(slow, fast),
	})
	res := runLoad(t, p.url("http", "/"), 60, 30, nil)
	checkNoErrors(t, res)
	if res.by["slow"] != 0 || res.by["fast"] != 60 {
		t.Errorf("answers %v: every request should end on the fast upstream", res.by)
	}
}

func TestResilienceUpstreamResets(t *testing.T) {
	a := startUpstream(t, "a", "-reset-every", "3")
	b := startUpstream(t, "b", "-reset-every", "4")
	p := startProxy(t, resilienceConfig, map[string]any{
		"Retry": retryAll, "Cluster": "", "Upstreams": ports(a, b),
	})
	// POSTs are not replayed by the keep-alive rule for idempotent requests, so only the
	// retry policy saves them; GETs run through the same loop.
	res := runLoad(t, p.url("http", "/"), 200, 100, nil)
	checkNoErrors(t, res)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	for i := range 30 {
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post(p.url("http", "/"), "text/plain", strings.NewReader("payload "+strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %d: status %d", i, resp.StatusCode)
		}
	}
}

// TestResilience503Bursts: one upstream answers bursts of 503s (8 in a row out of every 20);
// each is retried on the other upstream, which the previous_hosts predicate picks.
func TestResilience503Bursts(t *testing.T) {
	a := startUpstream(t, "a", "-fail-burst", "8")
	b := startUpstream(t, "b")
	p := startProxy(t, resilienceConfig, map[string]any{
		"Retry": retryAll, "Cluster": "", "Upstreams": ports(a, b),
	})
	res := runLoad(t, p.url("http", "/"), 200, 100, nil)
	checkNoErrors(t, res)
	if res.by["b"] <= res.by["a"] {
		t.Errorf("answers %v: b should have taken a's failed share as well", res.by)
	}
}

// TestResilienceChaos is the acceptance run: three upstreams, 50 requests per second for 30
// seconds, one upstream killed a third of the way in and restarted at two thirds. Retries
// hide the loss from clients, outlier detection ejects the dead upstream (visible in
// /clusters as failed_outlier_check) and lets it back once it answers again.
func TestResilienceChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of load")
	}
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	p := startProxy(t, resilienceConfig, map[string]any{
		"Retry": retryAll,
		"Cluster": `    outlier_detection:
      consecutive_5xx: 3
      consecutive_gateway_failure: 3
      interval: 0.5s
      base_ejection_time: 2s
      max_ejection_percent: 50`,
		"Upstreams": ports(a, b, c),
	})
	const rate, seconds = 50, 30
	var ejected, returned atomic.Bool
	var restartedAt atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			flags := hostFlags(p, a.addr())
			switch {
			case strings.Contains(flags, "failed_outlier_check"):
				ejected.Store(true)
			case ejected.Load() && restartedAt.Load() > 0:
				returned.Store(true)
			}
		}
	}()
	res := runLoad(t, p.url("http", "/"), rate*seconds, rate, func(i int) {
		switch i {
		case rate * seconds / 3:
			a.kill()
		case 2 * rate * seconds / 3:
			a.start()
			restartedAt.Store(int64(i))
		}
	})
	// The ejection may outlast the run by a few base_ejection_times; wait for the return.
	for deadline := time.Now().Add(20 * time.Second); !returned.Load() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	watch.Wait()
	checkNoErrors(t, res)
	t.Logf("chaos: %d requests at %d/s, answers %v, ejected %v, returned %v", res.total, rate, res.by, ejected.Load(), returned.Load())
	if !ejected.Load() {
		t.Error("/clusters never showed the killed upstream as failed_outlier_check")
	}
	if !returned.Load() {
		t.Error("the restarted upstream never came back from ejection in /clusters")
	}
	if res.by["a"] == 0 {
		t.Error("upstream a served nothing")
	}
	// After it returned, the restarted upstream takes traffic again.
	after := runLoad(t, p.url("http", "/"), 60, 60, nil)
	checkNoErrors(t, after)
	if after.by["a"] == 0 {
		t.Errorf("after its return upstream a got none of %v", after.by)
	}
}

// hostFlags reads the health_flags of one host of cluster app from /clusters.
func hostFlags(p *proxy, addr string) string {
	resp, err := http.Get(p.adminURL("/clusters"))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := "app::" + addr + "::health_flags::"
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimPrefix(line, prefix)
		}
	}
	return ""
}
