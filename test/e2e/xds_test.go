package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// controllerConfig is served by `nuncio controller`: an Envoy bootstrap, whose listener binds
// port 0 so that two data planes on one host each get a port of their own (read back from
// /listeners). The simple format refuses port 0.
const controllerConfig = `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: web
          route_config:
            name: web
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {path: /version}
                direct_response: {status: 200, body: {inline_string: "{{.Data.version}}"}}
              - match: {prefix: /}
                route: {cluster: app}
{{template "router"}}
  clusters:
  - name: app
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: app
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.upstream}}}}}
`

var webListener = regexp.MustCompile(`(?m)^web::(\S+)$`)

// listenerAddr is where the data plane's web listener is bound.
func listenerAddr(t *testing.T, p *proxy) string {
	t.Helper()
	var addr string
	wait.NoError(t, "the web listener", func() error {
		resp, err := http.Get(p.adminURL("/listeners"))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := webListener.FindSubmatch(b)
		if m == nil {
			return fmt.Errorf("not in /listeners; output:\n%s", p.log.String())
		}
		addr = string(m[1])
		return nil
	})
	return addr
}

// waitServes waits until GET url answers 200 with a body for which ok holds.
func waitServes(t *testing.T, url string, ok func(string) bool) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	wait.NoError(t, "GET "+url, func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !ok(string(b)) {
			return fmt.Errorf("answer %d %q", resp.StatusCode, b)
		}
		return nil
	})
}

// TestXDSControllerAndDataPlanes runs one controller and two data planes as separate
// processes: both follow a route change and an endpoint change made in the controller's file,
// keep serving while the controller is down, and follow it again once it is back.
func TestXDSControllerAndDataPlanes(t *testing.T) {
	a, b := startEcho(t, "a"), startEcho(t, "b")
	_, pa := hostPort(a)
	_, pb := hostPort(b)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "envoy.yaml")
	render := &proxy{t: t, dir: dir, ports: map[string]int{}}
	write := func(version string, upstream int) {
		t.Helper()
		tmp := cfg + ".tmp"
		if err := os.WriteFile(tmp, []byte(render.render(controllerConfig, map[string]any{"version": version, "upstream": upstream})), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
	}
	write("v1", pa)
	xdsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	ctl := startProcess(t, 0, "controller", "-c", cfg, "--xds-address", xdsAddr, "--drain-time", "1s")

	var planes []*proxy
	var urls []string
	for i, delta := range []bool{false, true} {
		admin := freePort(t)
		args := []string{"run", "--xds", xdsAddr, "--node-id", "gw-" + strconv.Itoa(i+1),
			"--admin", "127.0.0.1:" + strconv.Itoa(admin), "--drain-time", "1s"}
		if delta {
			args = append(args, "--xds-delta")
		}
		dp := startProcess(t, admin, args...)
		dp.waitReady()
		planes = append(planes, dp)
		urls = append(urls, "http://"+listenerAddr(t, dp))
	}
	isA := func(body string) bool { return strings.Contains(body, `"server":"a"`) }
	isB := func(body string) bool { return strings.Contains(body, `"server":"b"`) }
	is := func(want string) func(string) bool { return func(body string) bool { return body == want } }
	for _, u := range urls {
		waitServes(t, u+"/version", is("v1"))
		waitServes(t, u+"/app", isA)
	}

	// A route change, then an endpoint change, reach both.
	write("v2", pa)
	for _, u := range urls {
		waitServes(t, u+"/version", is("v2"))
	}
	write("v2", pb)
	for _, u := range urls {
		waitServes(t, u+"/app", isB)
	}

	// Without the controller, the data planes keep serving what they have.
	ctl.cmd.Process.Kill()
	<-ctl.exited
	for _, dp := range planes {
		dp.waitLog("stream ended", 1)
	}
	for _, u := range urls {
		waitServes(t, u+"/version", is("v2"))
		waitServes(t, u+"/app", isB)
	}

	// A new controller on the same address, with a changed file: both reconnect and follow.
	write("v3", pa)
	startProcess(t, 0, "controller", "-c", cfg, "--xds-address", xdsAddr, "--drain-time", "1s")
	for i, dp := range planes {
		u := "http://" + listenerAddr(t, dp)
		waitServes(t, u+"/version", is("v3"))
		waitServes(t, u+"/app", isA)
		if u != urls[i] {
			t.Logf("data plane %d rebound its listener: %s -> %s", i+1, urls[i], u)
		}
	}
}
