package helmtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs nuncio with args until the test ends, its output in a file shown on failure.
func start(t *testing.T, nuncio, name string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nuncio, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, out)
		}
	})
	return cmd
}

func get(url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return do(req)
}

func do(req *http.Request) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestGatewayBootstrap runs the gateway as the chart does (its bootstrap ConfigMap and its
// Deployment's arguments) against a controller on loopback, and checks what the probes and
// Prometheus rely on: /ready on the health port turns 200 LIVE once the controller's resources
// are in, /stats/prometheus answers, and nothing else of the admin API is reachable there.
func TestGatewayBootstrap(t *testing.T) {
	helm := helmBinary(t)
	nuncio := nuncioBinary(t)
	health, admin, xds, web := freePort(t), freePort(t), freePort(t), freePort(t)
	dir := t.TempDir()
	values := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(values, fmt.Appendf(nil, "gateway: {healthPort: %d, adminPort: %d}\n", health, admin), 0o644); err != nil {
		t.Fatal(err)
	}
	r := decode(t, render(t, helm, Case{Name: "ports", Values: values}))
	cm := r.configMaps["nuncio-gateway"]
	dep := r.deployments["nuncio-gateway"]
	if cm == nil || dep == nil {
		t.Fatalf("no gateway ConfigMap or Deployment: %v", r.kinds)
	}
	// Tests listen on loopback only.
	bootstrap := strings.ReplaceAll(cm.Data["bootstrap.yaml"], "0.0.0.0", "127.0.0.1")
	if err := os.WriteFile(filepath.Join(dir, "bootstrap.yaml"), []byte(bootstrap), 0o644); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		switch {
		case strings.HasPrefix(a, "-c="):
			a = "-c=" + filepath.Join(dir, "bootstrap.yaml")
		case strings.HasPrefix(a, "--xds="):
			a = fmt.Sprintf("--xds=127.0.0.1:%d", xds)
		}
		args = append(args, strings.ReplaceAll(a, "$(POD_NAME)", "gateway-0"))
	}

	simple := fmt.Sprintf(`apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 127.0.0.1:%d
  routes:
  - respond: {status: 200, body: "from the controller\n"}
`, web)
	if err := os.WriteFile(filepath.Join(dir, "controller.yaml"), []byte(simple), 0o644); err != nil {
		t.Fatal(err)
	}
	start(t, nuncio, "controller", "controller", "-c", filepath.Join(dir, "controller.yaml"), fmt.Sprintf("--xds-address=127.0.0.1:%d", xds))
	gw := start(t, nuncio, "gateway", args...)

	base := fmt.Sprintf("http://127.0.0.1:%d", health)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := get(base + "/ready")
		if code == http.StatusOK && strings.TrimSpace(body) == "LIVE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready on the health port: %d %q %v, want 200 LIVE", code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", web)); code != http.StatusOK || body != "from the controller\n" {
		t.Errorf("the controller's listener: %d %q %v", code, body, err)
	}
	if code, body, err := get(base + "/stats/prometheus"); code != http.StatusOK || !strings.Contains(body, "envoy_server_live") {
		t.Errorf("/stats/prometheus on the health port: %d %v, want Prometheus text with envoy_server_live", code, err)
	}
	for _, path := range []string{"/config_dump", "/clusters", "/", "/ready/../config_dump"} {
		if code, _, err := get(base + path); code != http.StatusNotFound {
			t.Errorf("GET %s on the health port: %d %v, want 404: only /ready and /stats/prometheus are exposed", path, code, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/quitquitquit", nil)
	if code, _, err := do(req); code != http.StatusNotFound {
		t.Errorf("POST /quitquitquit on the health port: %d %v, want 404", code, err)
	}
	if err := gw.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("gateway gone: %v", err)
	}
	// The admin API itself answers on loopback, where the chart puts it.
	if code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/server_info", admin)); code != http.StatusOK {
		t.Errorf("admin /server_info: %d %v", code, err)
	}
}
