package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which tools/test-deps.sh installs.
const chromiumPath = "/usr/bin/chromium"

const dashboardConfig = `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: {{.Port "web"}}}}
    filter_chains:
    - filters:
{{template "hcm"}}
          stat_prefix: ingress
          route_config:
            name: local
            virtual_hosts:
            - name: shop
              domains: ["*"]
              routes:
              - match: {prefix: "/health"}
                direct_response: {status: 200, body: {inline_string: "ok"}}
              - match: {prefix: "/"}
                route: {cluster: backend}
{{template "router"}}
  clusters:
  - name: backend
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.a}}}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.b}}}}}
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.Data.dead}}}}}
          health_status: UNHEALTHY
`

// statCounter reads one counter from the admin API's /stats?format=json.
func statCounter(t testing.TB, p *proxy, name string) int64 {
	t.Helper()
	resp, err := http.Get(p.adminURL("/stats?format=json&filter=" + strings.ReplaceAll("^"+name+"$", ".", `\.`)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Stats []struct {
			Name  string `json:"name"`
			Value *int64 `json:"value"`
		} `json:"stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Stats {
		if s.Name == name && s.Value != nil {
			return *s.Value
		}
	}
	t.Fatalf("no counter %s in /stats", name)
	return 0
}

// newBrowser starts headless Chromium for the test's duration; it is gone when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found: install Debian's chromium (tools/test-deps.sh --peers does) to run the dashboard test", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1100),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // kills the browser and waits for it
	})
	// The first action starts the browser, which lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return s
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("%s[%s]: %v", sel, name, err)
	}
	return r.Value
}

// TestDashboard drives the admin dashboard in headless Chromium against a real nuncio carrying
// traffic: the page renders, shows the cluster and each endpoint's health, and the request
// count it shows is the one /stats reports.
func TestDashboard(t *testing.T) {
	browser := newBrowser(t)
	a, b := startEcho(t, "a"), startEcho(t, "b")
	_, aPort := hostPort(a)
	_, bPort := hostPort(b)
	p := startProxy(t, dashboardConfig, map[string]any{"a": aPort, "b": bPort, "dead": freePort(t)})
	endpoints := []string{
		"127.0.0.1:" + strconv.Itoa(aPort),
		"127.0.0.1:" + strconv.Itoa(bPort),
	}

	// Traffic while the page watches: mostly successes, a few 503s, some slower requests, so
	// that every chart has something to draw.
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/"
				switch {
				case i%20 == 7:
					path = "/status/503"
				case i%5 == 3:
					path = fmt.Sprintf("/delay/%d", 5+(i*7+w*3)%40)
				}
				resp, err := client.Get(p.url("web", path))
				if err == nil {
					resp.Body.Close()
					sent.Add(1)
				}
				time.Sleep(15 * time.Millisecond)
			}
		}(w)
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	ctx, cancel := context.WithTimeout(browser, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(p.adminURL("/dashboard")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"]`)),
	); err != nil {
		t.Fatalf("dashboard did not load: %v\n%s", err, p.log.String())
	}
	// Let a few seconds of samples accumulate for the charts; longer when the screenshot is
	// wanted for the documentation: NUNCIO_DASHBOARD_SCREENSHOT=docs/img/dashboard.png makes the
	// README's.
	watch := 6 * time.Second
	if os.Getenv("NUNCIO_DASHBOARD_SCREENSHOT") != "" {
		watch = 45 * time.Second
	}
	time.Sleep(watch)
	// The documentation's screenshot is taken with the traffic still flowing.
	if dst := os.Getenv("NUNCIO_DASHBOARD_SCREENSHOT"); dst != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if sent.Load() == 0 {
		t.Fatal("no request went through the proxy")
	}

	// The page polls every second; once traffic stops it settles on the /stats value.
	want := statCounter(t, p, "http.ingress.downstream_rq_total")
	if want != sent.Load() {
		t.Errorf("/stats counts %d requests, the client completed %d", want, sent.Load())
	}
	wantUpstream := statCounter(t, p, "cluster.backend.upstream_rq_total")
	var shown, shownUpstream string
	deadline := time.Now().Add(10 * time.Second)
	for {
		shown = attr(t, ctx, `#total-requests`, "data-value")
		shownUpstream = attr(t, ctx, `[data-cluster="backend"] .upstream-rq`, "data-value")
		if shown == strconv.FormatInt(want, 10) && shownUpstream == strconv.FormatInt(wantUpstream, 10) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard shows %s requests (%s upstream), /stats has %d (%d)", shown, shownUpstream, want, wantUpstream)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if shownText := text(t, ctx, `#total-requests`); strings.ReplaceAll(shownText, ",", "") != strconv.FormatInt(want, 10) {
		t.Errorf("total requests reads %q, want %d", shownText, want)
	}

	// The cluster and each of its endpoints, with their health.
	hosts, err := chromedp.Run(ctx, chromedp.Evaluate[[]map[string]string](`Array.from(document.querySelectorAll('[data-cluster="backend"] tr.host')).map(r => ({
		address: r.dataset.host, health: r.dataset.health, label: r.querySelector('.health').textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 3 {
		t.Fatalf("cluster backend lists %d endpoints, want 3: %v", len(hosts), hosts)
	}
	for i, ep := range endpoints {
		if hosts[i]["address"] != ep || hosts[i]["health"] != "healthy" || hosts[i]["label"] != "healthy" {
			t.Errorf("endpoint %d: %v, want %s healthy", i, hosts[i], ep)
		}
	}
	if hosts[2]["health"] != "/failed_eds_health" || hosts[2]["label"] != "failed_eds_health" {
		t.Errorf("the endpoint marked UNHEALTHY shows %v", hosts[2])
	}
	if healthy := text(t, ctx, `[data-cluster="backend"] .healthy-count`); healthy != "2/3" {
		t.Errorf("healthy count %q, want 2/3", healthy)
	}

	// Listeners, routes, the config version and the charts.
	listener := text(t, ctx, `#listeners tr[data-listener="web"]`)
	routes := text(t, ctx, `#routes [data-route-config="local"]`)
	version := text(t, ctx, `#config-version`)
	paths, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#chart-rps path.line, #chart-latency path.line').length`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(listener, "127.0.0.1:"+strconv.Itoa(p.ports["web"])) || !strings.Contains(listener, "ingress") {
		t.Errorf("listener row %q", listener)
	}
	for _, want := range []string{"shop", "prefix /health", "direct 200", "→ backend"} {
		if !strings.Contains(routes, want) {
			t.Errorf("route table lacks %q: %q", want, routes)
		}
	}
	if version == "" || version == "–" {
		t.Errorf("config version %q", version)
	}
	if paths < 2 {
		t.Errorf("%d chart lines drawn, want the request rate and latency lines", paths)
	}

	// A rejected update shows, with its reason, and the version in force stays.
	p.rewrite(strings.Replace(dashboardConfig, "route: {cluster: backend}", "route: {cluster: nope}", 1), map[string]any{"a": aPort, "b": bPort, "dead": 1})
	p.waitLog("config rejected", 1)
	deadline = time.Now().Add(10 * time.Second)
	for {
		hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("rejection").hidden`))
		if err != nil {
			t.Fatal(err)
		}
		if !hidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dashboard does not show the rejected update")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if reason := text(t, ctx, `#rejection-reason`); !strings.Contains(reason, "nope") {
		t.Errorf("rejection reason %q does not name the unknown cluster", reason)
	}
	if v := text(t, ctx, `#config-version`); v != version {
		t.Errorf("config version %q after a rejected update, want %q still", v, version)
	}

	// A screenshot of the final state, to look at.
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}
