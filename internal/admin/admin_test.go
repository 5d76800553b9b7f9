package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testSource reports fixed data.
type testSource struct {
	info      ServerInfo
	clusters  []ClusterStatus
	listeners []ListenerStatus
	dump      []byte
	dumpErr   error
}

func (s *testSource) ConfigDump() ([]byte, error) { return s.dump, s.dumpErr }
func (s *testSource) Clusters() []ClusterStatus   { return s.clusters }
func (s *testSource) Listeners() []ListenerStatus { return s.listeners }
func (s *testSource) ServerInfo() ServerInfo      { return s.info }

var _ Source = (*testSource)(nil)

func newTestSource() *testSource {
	return &testSource{
		info: ServerInfo{
			Version:            "1.2.3",
			State:              StateLive,
			UptimeCurrentEpoch: 90*time.Second + 400*time.Millisecond,
			CommandLineOptions: CommandLineOptions{
				ConfigPath:  "/etc/nuncio/nuncio.yaml",
				LogLevel:    "info",
				Concurrency: 2,
				DrainTime:   1500 * time.Millisecond,
			},
		},
		clusters: []ClusterStatus{
			{
				Name: "backend",
				Hosts: []HostStatus{
					{Address: "10.0.0.1:8080", Weight: 1, ActiveRequests: 3, ActiveConnections: 2, TotalConnections: 7},
					{Address: "10.0.0.2:8080", Weight: 2, Health: FailedActiveHC | FailedOutlierCheck},
				},
			},
			{Name: "xds", AddedViaAPI: true, Hosts: []HostStatus{{Address: "/run/xds.sock", Health: FailedEDSHealth}}},
		},
		listeners: []ListenerStatus{
			{Name: "http", Address: "0.0.0.0:8080", ActiveConnections: 5},
			{Name: "https", Address: "[::]:8443"},
		},
		dump: []byte(`{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"}]}`),
	}
}

// start runs a server on a loopback port for the test's duration.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Address = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, s *Server, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// jsonEqual compares two JSON texts by value, so that indentation and key order do not matter.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs\n got: %s\nwant: %s", got, want)
	}
}

func TestEndpoints(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Quit: func() {}})
	tests := []struct {
		name        string
		method      string
		path        string
		wantCode    int
		wantType    string
		wantBody    string   // exact, when set
		wantJSON    string   // compared by value, when set
		wantContain []string // substrings, when set
		wantAllow   string
	}{
		{
			name: "index", method: "GET", path: "/",
			wantCode: 200, wantType: contentHTML,
			wantContain: []string{
				`<a href="/clusters">/clusters</a>`,
				`<form action="/quitquitquit" method="post">`,
				`<form action="/healthcheck/fail" method="post">`,
				"Version 1.2.3",
			},
		},
		{
			name: "ready", method: "GET", path: "/ready",
			wantCode: 200, wantType: contentText, wantBody: "LIVE\n",
		},
		{
			name: "ready head", method: "HEAD", path: "/ready",
			wantCode: 200, wantType: contentText, wantBody: "",
		},
		{
			name: "pprof index", method: "GET", path: "/debug/pprof/",
			wantCode: 200, wantContain: []string{"heap", "goroutine"},
		},
		{
			name: "pprof heap", method: "GET", path: "/debug/pprof/heap?debug=1",
			wantCode: 200, wantContain: []string{"heap profile"},
		},
		{
			name: "server info", method: "GET", path: "/server_info",
			wantCode: 200, wantType: contentJSON,
			wantJSON: `{
				"version": "1.2.3",
				"state": "LIVE",
				"hot_restart_version": "disabled",
				"command_line_options": {
					"config_path": "/etc/nuncio/nuncio.yaml",
					"log_level": "info",
					"concurrency": 2,
					"drain_time": "1.500s",
					"mode": "Serve"
				},
				"uptime_current_epoch": "90s",
				"uptime_all_epochs": "90s"
			}`,
		},
		{
			name: "config dump passes through", method: "GET", path: "/config_dump",
			wantCode: 200, wantType: contentJSON,
			wantBody: `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"}]}`,
		},
		{
			name: "clusters text", method: "GET", path: "/clusters",
			wantCode: 200, wantType: contentText,
			wantBody: "backend::added_via_api::false\n" +
				"backend::10.0.0.1:8080::cx_active::2\n" +
				"backend::10.0.0.1:8080::cx_total::7\n" +
				"backend::10.0.0.1:8080::rq_active::3\n" +
				"backend::10.0.0.1:8080::health_flags::healthy\n" +
				"backend::10.0.0.1:8080::weight::1\n" +
				"backend::10.0.0.2:8080::cx_active::0\n" +
				"backend::10.0.0.2:8080::cx_total::0\n" +
				"backend::10.0.0.2:8080::rq_active::0\n" +
				"backend::10.0.0.2:8080::health_flags::/failed_active_hc/failed_outlier_check\n" +
				"backend::10.0.0.2:8080::weight::2\n" +
				"xds::added_via_api::true\n" +
				"xds::/run/xds.sock::cx_active::0\n" +
				"xds::/run/xds.sock::cx_total::0\n" +
				"xds::/run/xds.sock::rq_active::0\n" +
				"xds::/run/xds.sock::health_flags::/failed_eds_health\n" +
				"xds::/run/xds.sock::weight::0\n",
		},
		{
			name: "clusters json", method: "GET", path: "/clusters?format=json",
			wantCode: 200, wantType: contentJSON,
			wantJSON: `{"cluster_statuses": [
				{"name": "backend", "host_statuses": [
					{
						"address": {"socket_address": {"address": "10.0.0.1", "port_value": 8080}},
						"stats": [
							{"type": "GAUGE", "value": "2", "name": "cx_active"},
							{"value": "7", "name": "cx_total"},
							{"type": "GAUGE", "value": "3", "name": "rq_active"}
						],
						"health_status": {"eds_health_status": "HEALTHY"},
						"weight": 1
					},
					{
						"address": {"socket_address": {"address": "10.0.0.2", "port_value": 8080}},
						"stats": [
							{"type": "GAUGE", "name": "cx_active"},
							{"name": "cx_total"},
							{"type": "GAUGE", "name": "rq_active"}
						],
						"health_status": {
							"failed_active_health_check": true,
							"failed_outlier_check": true,
							"eds_health_status": "HEALTHY"
						},
						"weight": 2
					}
				]},
				{"name": "xds", "added_via_api": true, "host_statuses": [
					{
						"address": {"pipe": {"path": "/run/xds.sock"}},
						"stats": [
							{"type": "GAUGE", "name": "cx_active"},
							{"name": "cx_total"},
							{"type": "GAUGE", "name": "rq_active"}
						],
						"health_status": {"eds_health_status": "UNHEALTHY"}
					}
				]}
			]}`,
		},
		{
			name: "clusters unknown format", method: "GET", path: "/clusters?format=yaml",
			wantCode: 400, wantType: contentText, wantContain: []string{`invalid format "yaml"`},
		},
		{
			name: "listeners text", method: "GET", path: "/listeners",
			wantCode: 200, wantType: contentText,
			wantBody: "http::0.0.0.0:8080\nhttps::[::]:8443\n",
		},
		{
			name: "listeners json", method: "GET", path: "/listeners?format=json",
			wantCode: 200, wantType: contentJSON,
			wantJSON: `{"listener_statuses": [
				{"name": "http", "local_address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}}, "active_connections": "5"},
				{"name": "https", "local_address": {"socket_address": {"address": "::", "port_value": 8443}}, "active_connections": "0"}
			]}`,
		},
		{
			name: "mutating endpoint refuses GET", method: "GET", path: "/healthcheck/fail",
			wantCode: 405, wantType: contentText, wantAllow: "POST",
			wantBody: "Method GET not allowed, POST required.\n",
		},
		{
			name: "quit refuses PUT", method: "PUT", path: "/quitquitquit",
			wantCode: 405, wantAllow: "POST",
			wantBody: "Method PUT not allowed, POST required.\n",
		},
		{
			name: "read endpoint refuses POST", method: "POST", path: "/ready",
			wantCode: 405, wantAllow: "GET, HEAD",
		},
		{
			name: "index refuses DELETE", method: "DELETE", path: "/",
			wantCode: 405, wantAllow: "GET, HEAD",
		},
		{
			name: "unknown path lists commands", method: "GET", path: "/statz",
			wantCode: 404, wantType: contentText,
			wantContain: []string{"invalid path. admin commands are:\n", "  /ready: print server state"},
		},
		{
			name: "trailing slash is another path", method: "GET", path: "/ready/",
			wantCode: 404,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path)
			if r.code != tc.wantCode {
				t.Errorf("status %d, want %d; body %q", r.code, tc.wantCode, r.body)
			}
			if tc.wantType != "" && r.header.Get("Content-Type") != tc.wantType {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tc.wantType)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if tc.wantAllow != "" && r.header.Get("Allow") != tc.wantAllow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.wantAllow)
			}
			if tc.wantBody != "" || tc.method == "HEAD" {
				if r.body != tc.wantBody {
					t.Errorf("body\n got: %q\nwant: %q", r.body, tc.wantBody)
				}
			}
			if tc.wantJSON != "" {
				jsonEqual(t, r.body, tc.wantJSON)
			}
			for _, sub := range tc.wantContain {
				if !strings.Contains(r.body, sub) {
					t.Errorf("body lacks %q:\n%s", sub, r.body)
				}
			}
		})
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name     string
		state    State
		failed   bool
		wantCode int
		wantBody string
	}{
		{name: "live", state: StateLive, wantCode: 200, wantBody: "LIVE\n"},
		{name: "live but failed", state: StateLive, failed: true, wantCode: 503, wantBody: "DRAINING\n"},
		{name: "pre-initializing", state: StatePreInitializing, wantCode: 503, wantBody: "PRE_INITIALIZING\n"},
		{name: "initializing", state: StateInitializing, wantCode: 503, wantBody: "INITIALIZING\n"},
		{name: "initializing and failed", state: StateInitializing, failed: true, wantCode: 503, wantBody: "INITIALIZING\n"},
		{name: "draining", state: StateDraining, wantCode: 503, wantBody: "DRAINING\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestSource()
			src.info.State = tc.state
			s := start(t, Options{Source: src})
			if tc.failed {
				if r := do(t, s, "POST", "/healthcheck/fail"); r.code != 200 {
					t.Fatalf("/healthcheck/fail: %d %q", r.code, r.body)
				}
			}
			r := do(t, s, "GET", "/ready")
			if r.code != tc.wantCode || r.body != tc.wantBody {
				t.Errorf("/ready = %d %q, want %d %q", r.code, r.body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestHealthCheckToggle(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	steps := []struct {
		name       string
		post       string
		wantFailed bool
		wantReady  int
		wantState  string
	}{
		{name: "initially passing", wantFailed: false, wantReady: 200, wantState: "LIVE"},
		{name: "fail", post: "/healthcheck/fail", wantFailed: true, wantReady: 503, wantState: "DRAINING"},
		{name: "fail again is idempotent", post: "/healthcheck/fail", wantFailed: true, wantReady: 503, wantState: "DRAINING"},
		{name: "ok", post: "/healthcheck/ok", wantFailed: false, wantReady: 200, wantState: "LIVE"},
		{name: "ok again is idempotent", post: "/healthcheck/ok", wantFailed: false, wantReady: 200, wantState: "LIVE"},
	}
	// The steps run in order on one server; each depends on the one before.
	for _, st := range steps {
		if st.post != "" {
			if r := do(t, s, "POST", st.post); r.code != 200 || r.body != "OK\n" {
				t.Fatalf("%s: POST %s = %d %q, want 200 \"OK\\n\"", st.name, st.post, r.code, r.body)
			}
		}
		if got := s.HealthFailed(); got != st.wantFailed {
			t.Errorf("%s: HealthFailed() = %t, want %t", st.name, got, st.wantFailed)
		}
		if r := do(t, s, "GET", "/ready"); r.code != st.wantReady {
			t.Errorf("%s: /ready = %d, want %d", st.name, r.code, st.wantReady)
		}
		var info struct{ State string }
		if err := json.Unmarshal([]byte(do(t, s, "GET", "/server_info").body), &info); err != nil {
			t.Fatalf("%s: /server_info: %v", st.name, err)
		}
		if info.State != st.wantState {
			t.Errorf("%s: /server_info state %q, want %q", st.name, info.State, st.wantState)
		}
	}
}

func TestQuit(t *testing.T) {
	var calls atomic.Int32
	called := make(chan struct{}, 2)
	s := start(t, Options{Source: newTestSource(), Quit: func() {
		calls.Add(1)
		called <- struct{}{}
	}})
	for range 2 {
		if r := do(t, s, "POST", "/quitquitquit"); r.code != 200 || r.body != "OK\n" {
			t.Fatalf("POST /quitquitquit = %d %q, want 200 \"OK\\n\"", r.code, r.body)
		}
	}
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("Quit was not called")
	}
	// A second call, had there been one, is started as soon as its answer is sent; give it a
	// moment to show up before checking that it did not.
	time.Sleep(50 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Errorf("Quit called %d times, want 1", n)
	}
}

func TestQuitClosingTheServer(t *testing.T) {
	var s *Server
	closed := make(chan error, 1)
	s = start(t, Options{Source: newTestSource(), Quit: func() { closed <- s.Close() }})
	if r := do(t, s, "POST", "/quitquitquit"); r.code != 200 || r.body != "OK\n" {
		t.Fatalf("POST /quitquitquit = %d %q, want 200 \"OK\\n\"", r.code, r.body)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close from Quit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Quit was not called")
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("server still accepts connections after Close")
	}
}

func TestCrossOrigin(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		path     string
		header   []string
		wantCode int
	}{
		{name: "no browser headers", method: "POST", path: "/healthcheck/fail", wantCode: 200},
		{name: "from the index page", method: "POST", path: "/healthcheck/ok", header: []string{"Sec-Fetch-Site", "same-origin"}, wantCode: 200},
		{name: "typed by the user", method: "POST", path: "/healthcheck/ok", header: []string{"Sec-Fetch-Site", "none"}, wantCode: 200},
		{name: "from another site", method: "POST", path: "/quitquitquit", header: []string{"Sec-Fetch-Site", "cross-site"}, wantCode: 403},
		{name: "from another origin, older browser", method: "POST", path: "/healthcheck/fail", header: []string{"Origin", "http://evil.example"}, wantCode: 403},
		{name: "reads are not affected", method: "GET", path: "/ready", header: []string{"Sec-Fetch-Site", "cross-site"}, wantCode: 200},
	}
	quit := make(chan struct{}, 1)
	s := start(t, Options{Source: newTestSource(), Quit: func() { quit <- struct{}{} }})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, s, tc.method, tc.path, tc.header...); r.code != tc.wantCode {
				t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, r.code, r.body, tc.wantCode)
			}
		})
	}
	select {
	case <-quit:
		t.Error("a cross-site request quit the server")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestQuitUnavailable(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	if r := do(t, s, "POST", "/quitquitquit"); r.code != http.StatusNotImplemented {
		t.Errorf("POST /quitquitquit without Quit = %d %q, want 501", r.code, r.body)
	}
}

func TestConfigDumpError(t *testing.T) {
	src := newTestSource()
	src.dumpErr = errors.New("snapshot not built")
	s := start(t, Options{Source: src})
	r := do(t, s, "GET", "/config_dump")
	if r.code != 500 || !strings.Contains(r.body, "snapshot not built") {
		t.Errorf("/config_dump = %d %q, want 500 naming the error", r.code, r.body)
	}
}

func TestVersionFallsBackToOptions(t *testing.T) {
	src := newTestSource()
	src.info.Version = ""
	s := start(t, Options{Source: src, Version: "v0.1.0"})
	var info struct{ Version string }
	if err := json.Unmarshal([]byte(do(t, s, "GET", "/server_info").body), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "v0.1.0" {
		t.Errorf("version %q, want v0.1.0", info.Version)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantErr  string
		wantAddr string
	}{
		{name: "defaults", opts: Options{Source: newTestSource()}, wantAddr: DefaultAddress},
		{name: "no source", opts: Options{}, wantErr: "Source is required"},
		{name: "address without port", opts: Options{Source: newTestSource(), Address: "127.0.0.1"}, wantErr: "missing port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if s.opts.Address != tc.wantAddr {
				t.Errorf("address %q, want %q", s.opts.Address, tc.wantAddr)
			}
			if s.Addr() != nil {
				t.Errorf("Addr() before Start = %v, want nil", s.Addr())
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close before Start: %v", err)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	s := start(t, Options{Source: newTestSource()})
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	taken, err := New(Options{Source: newTestSource(), Address: s.Addr().String(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := taken.Start(); err == nil {
		taken.Close()
		t.Error("Start on a port in use succeeded")
	}
}

func TestLoopbackBindDoesNotWarn(t *testing.T) {
	var logs bytes.Buffer
	start(t, Options{Source: newTestSource(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("loopback bind logged a warning:\n%s", logs.String())
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want bool
	}{
		{name: "ipv4 loopback", addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9901}, want: true},
		{name: "other ipv4 loopback", addr: &net.TCPAddr{IP: net.IPv4(127, 1, 2, 3)}, want: true},
		{name: "ipv6 loopback", addr: &net.TCPAddr{IP: net.IPv6loopback}, want: true},
		{name: "ipv4 any", addr: &net.TCPAddr{IP: net.IPv4zero}, want: false},
		{name: "ipv6 any", addr: &net.TCPAddr{IP: net.IPv6unspecified}, want: false},
		{name: "private address", addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, want: false},
		{name: "unix socket", addr: &net.UnixAddr{Name: "/tmp/admin.sock", Net: "unix"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := loopback(tc.addr); got != tc.want {
				t.Errorf("loopback(%v) = %t, want %t", tc.addr, got, tc.want)
			}
		})
	}
}
