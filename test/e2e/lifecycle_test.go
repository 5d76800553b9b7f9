package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// reloadConfig answers /version with a direct response naming Data.version, and proxies
// everything else to the echo upstream.
const reloadConfig = `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "web"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: web
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: "/version"}
                direct_response: {status: 200, body: {inline_string: "{{.Data.version}}"}}
              - match: {prefix: "/"}
                route: {cluster: echo}
{{template "router"}}
{{if .Data.second}}
  - name: second
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "second"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: second
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: "second"}}}]}
{{template "router"}}
{{end}}
  clusters:
{{staticCluster "echo" .Data.echo}}
`

// startReloadProxy runs nuncio on reloadConfig, answering version on /version, in front of
// an echo upstream. data is what the config was rendered with, to change for rewrites.
func startReloadProxy(t *testing.T, version string) (*proxy, map[string]any) {
	t.Helper()
	_, pe := hostPort(startEcho(t, "echo"))
	data := map[string]any{"version": version, "echo": pe, "second": false}
	return startProxy(t, reloadConfig, data), data
}

func getBody(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitBody polls url until it answers want.
func waitBody(t testing.TB, url, want string) {
	t.Helper()
	wait.NoError(t, "GET "+url+" to answer "+want, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			return fmt.Errorf("answered %q", b)
		}
		return nil
	})
}

func TestLiveReload(t *testing.T) {
	p, data := startReloadProxy(t, "v1")
	url := p.url("web", "/version")
	waitBody(t, url, "v1")

	t.Run("file change applies", func(t *testing.T) {
		data["version"] = "v2"
		p.rewrite(reloadConfig, data)
		waitBody(t, url, "v2")
	})
	t.Run("bad file is rejected and the old config stays", func(t *testing.T) {
		if err := os.WriteFile(p.cfgPath, []byte("static_resources:\n  clusters:\n  - name: x\n    lb_policy: NOPE\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		p.waitLog("config rejected", 1)
		if !strings.Contains(p.log.String(), p.cfgPath) {
			t.Errorf("rejection does not name the file:\n%s", p.log.String())
		}
		if code, body := getBody(t, url); code != 200 || body != "v2" {
			t.Fatalf("after a bad reload: %d %q, want the previous config", code, body)
		}
	})
	t.Run("SIGHUP reloads and listeners come and go", func(t *testing.T) {
		data["version"] = "v3"
		data["second"] = true
		// Write without the watcher noticing a difference in timing: SIGHUP must be enough.
		p.rewrite(reloadConfig, data)
		p.signal(syscall.SIGHUP)
		waitBody(t, url, "v3")
		waitBody(t, p.url("second", "/"), "second")
		data["second"] = false
		p.rewrite(reloadConfig, data)
		wait.For(t, "the removed listener to stop accepting", func() bool {
			resp, err := http.Get(p.url("second", "/"))
			if err == nil {
				resp.Body.Close()
			}
			return err != nil
		})
	})
}

// TestReloadUnderLoad applies 20 reloads while clients keep sending requests on keep-alive
// connections; none of the requests may fail.
func TestReloadUnderLoad(t *testing.T) {
	p, data := startReloadProxy(t, "r0")
	url := p.url("web", "/load")

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 100000; i++ { // bounded; stop ends it far sooner
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					if err == nil {
						err = &statusErr{resp.StatusCode}
					}
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		data["version"] = "r" + itoa(i)
		p.rewrite(reloadConfig, data)
		waitBody(t, p.url("web", "/version"), data["version"].(string))
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across 20 reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests completed; the load did not overlap the reloads", ok.Load())
	}
	t.Logf("%d requests, 0 failures across 20 reloads", ok.Load())
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return "status " + itoa(e.code) }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	if neg {
		b = append([]byte{'-'}, b...)
	}
	return string(b)
}

// TestGracefulShutdown sends SIGTERM while a slow request is in flight: the request must
// complete, new connections must be refused, and the process must exit 0.
func TestGracefulShutdown(t *testing.T) {
	p, _ := startReloadProxy(t, "v")

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(p.url("web", "/delay/800"))
		if err != nil {
			done <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	time.Sleep(200 * time.Millisecond) // let the request reach the upstream
	p.signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight request during drain: %d %v", r.code, r.err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after draining")
	}
	if p.exitErr != nil {
		t.Fatalf("exit: %v", p.exitErr)
	}
}

func TestAdminAPI(t *testing.T) {
	p, data := startReloadProxy(t, "v")

	code, body := getBody(t, p.adminURL("/ready"))
	if code != 200 || strings.TrimSpace(body) != "LIVE" {
		t.Errorf("/ready = %d %q", code, body)
	}
	code, body = getBody(t, p.adminURL("/server_info"))
	var info map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &info) != nil || info["state"] != "LIVE" {
		t.Errorf("/server_info = %d %s", code, body)
	}
	code, body = getBody(t, p.adminURL("/config_dump"))
	if code != 200 || !strings.Contains(body, "envoy.admin.v3.ListenersConfigDump") || !strings.Contains(body, `"echo"`) {
		t.Errorf("/config_dump = %d %.300s", code, body)
	}
	code, body = getBody(t, p.adminURL("/clusters"))
	if code != 200 || !strings.Contains(body, "echo::127.0.0.1:"+itoa(data["echo"].(int))) {
		t.Errorf("/clusters = %d %q", code, body)
	}
	code, body = getBody(t, p.adminURL("/listeners"))
	if code != 200 || !strings.Contains(body, "web::127.0.0.1:"+itoa(p.ports["web"])) {
		t.Errorf("/listeners = %d %q", code, body)
	}

	// Failing health checks makes /ready answer 503 and keeps traffic flowing.
	resp, err := http.Post(p.adminURL("/healthcheck/fail"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := getBody(t, p.adminURL("/ready")); code != 503 {
		t.Errorf("/ready after /healthcheck/fail = %d, want 503", code)
	}
	if code, _ := getBody(t, p.url("web", "/version")); code != 200 {
		t.Errorf("traffic after /healthcheck/fail = %d", code)
	}
	resp, _ = http.Post(p.adminURL("/healthcheck/ok"), "", nil)
	resp.Body.Close()
	if code, _ := getBody(t, p.adminURL("/ready")); code != 200 {
		t.Errorf("/ready after /healthcheck/ok = %d", code)
	}

	// /quitquitquit stops the process cleanly.
	resp, err = http.Post(p.adminURL("/quitquitquit"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after /quitquitquit")
	}
}

// TestValidateExamples checks that every shipped example is a valid config.
func TestValidateExamples(t *testing.T) {
	// Run from the repository root, as the README does: Envoy resolves relative file names
	// against the working directory.
	files, _ := filepath.Glob("../../examples/*/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		f = strings.TrimPrefix(f, "../../")
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			cmd := exec.Command(binPath, "validate", f)
			cmd.Dir = "../.."
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("nuncio validate %s: %v\n%s", f, err, out)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.yaml")
	os.WriteFile(f, []byte("static_resources:\n  clusters:\n  - name: c\n    type: STATIC\n    lb_policy: CLUSTER_PROVIDED\n"), 0o644)
	out, err := exec.Command(binPath, "validate", f).CombinedOutput()
	if err == nil {
		t.Fatalf("invalid config accepted:\n%s", out)
	}
	for _, want := range []string{f, "lb_policy"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error %q does not mention %q", out, want)
		}
	}
}

// TestTranslateSimple turns a simple config into Envoy YAML, which must validate and serve.
func TestTranslateSimple(t *testing.T) {
	files, _ := filepath.Glob("../../examples/simple/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(binPath, "translate", "--to", "envoy", "-c", f).Output()
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			envoy := filepath.Join(t.TempDir(), "envoy.yaml")
			os.WriteFile(envoy, out, 0o644)
			// Relative certificate paths were resolved against the simple config's folder.
			if vout, err := exec.Command(binPath, "validate", envoy).CombinedOutput(); err != nil {
				t.Fatalf("translated config does not validate: %v\n%s\n%s", err, vout, out)
			}
		})
	}
}

// TestDefaultConfig runs the binary with no config: the welcome page on :8080 and the admin
// API on 127.0.0.1:9901.
func TestDefaultConfig(t *testing.T) {
	// The built-in config binds fixed ports; another process holding them is not a failure of
	// the default config.
	for _, addr := range []string{"0.0.0.0:8080", "127.0.0.1:9901"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is in use by another process: %v", addr, err)
		}
		l.Close()
	}
	cmd := exec.Command(binPath, "run")
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:8080/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "127.0.0.1:9901") {
				t.Fatalf("welcome page %d:\n%s", resp.StatusCode, b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("default listener never answered: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := getBody(t, "http://127.0.0.1:9901/ready"); code != 200 {
		t.Errorf("admin /ready = %d", code)
	}
}
