package server

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/admin"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// adminDo sends a request to s's admin API. Run starts the admin API after the first
// configuration is applied, so a test that has just seen a listener bound waits for it.
func adminDo(t *testing.T, s *Server, method, path string) (int, string) {
	t.Helper()
	var a *admin.Server
	wait.For(t, "the admin API serves", func() bool {
		a = s.adminLive.Load()
		return a != nil
	})
	req, err := http.NewRequest(method, "http://"+a.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func statValue(st *stats.Store, name string) (int64, bool) {
	for _, s := range st.All() {
		if s.Name == name {
			return s.Value, true
		}
	}
	return 0, false
}

func TestServerStatsAndConfigStatus(t *testing.T) {
	leak.Check(t)
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	writeFile(t, path, webYAML("v1"))
	st := stats.NewStore()
	lv := new(slog.LevelVar)
	s := newTestServer(t, Options{ConfigPath: path, AdminAddress: "127.0.0.1:0", Stats: st, LevelVar: lv})
	startRun(t, s)

	// The listener binds inside Apply, a moment before the update is counted and published.
	wait.For(t, "the first load is counted", func() bool {
		v, _ := statValue(st, "nuncio.config.update_success")
		return v == 1 && s.ConfigStatus().Version != ""
	})
	cs := s.ConfigStatus()
	if cs.Version == "" || cs.AppliedAt.IsZero() || cs.LastRejection != nil {
		t.Errorf("config status %+v", cs)
	}

	writeFile(t, path, webYAML("v2"))
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "static_resources: [\n")
	if err := s.Reload(); err == nil {
		t.Fatal("a broken file was accepted")
	}
	if v, _ := statValue(st, "nuncio.config.update_success"); v != 2 {
		t.Errorf("update_success %d, want 2", v)
	}
	if v, _ := statValue(st, "nuncio.config.update_rejected"); v != 1 {
		t.Errorf("update_rejected %d, want 1", v)
	}
	cs2 := s.ConfigStatus()
	if cs2.LastRejection == nil || !strings.Contains(cs2.LastRejection.Reason, path) || cs2.Version == cs.Version {
		t.Errorf("config status after a reload and a rejection: %+v (before %+v)", cs2, cs)
	}

	// The admin API serves the server's gauges, refreshed as it reads them.
	code, body := adminDo(t, s, "GET", "/stats?filter=%5Eserver%5C.")
	if code != 200 {
		t.Fatalf("/stats: %d %s", code, body)
	}
	for _, want := range []string{"server.live: 1\n", "server.state: 0\n", "server.total_connections: "} {
		if !strings.Contains(body, want) {
			t.Errorf("/stats lacks %q:\n%s", want, body)
		}
	}
	if v, _ := statValue(st, "server.memory_allocated"); v <= 0 {
		t.Errorf("server.memory_allocated %d", v)
	}
	code, body = adminDo(t, s, "GET", "/stats/prometheus?filter=nuncio")
	if code != 200 || !strings.Contains(body, "envoy_nuncio_config_update_rejected{} 1\n") {
		t.Errorf("/stats/prometheus: %d\n%s", code, body)
	}

	// /logging changes the level of the logger the server was given.
	if code, _ := adminDo(t, s, "POST", "/logging?level=debug"); code != 200 || lv.Level() != slog.LevelDebug {
		t.Errorf("/logging: status %d, level %v", code, lv.Level())
	}

	// The dashboard's data carries the config version and the rejection.
	code, body = adminDo(t, s, "GET", "/dashboard/data")
	if code != 200 || !strings.Contains(body, `"version": "`+cs2.Version+`"`) || !strings.Contains(body, `"reason": "`+path) {
		t.Errorf("/dashboard/data: %d\n%s", code, body)
	}
}

func TestDrainListeners(t *testing.T) {
	leak.Check(t)
	for _, graceful := range []bool{true, false} {
		name := "immediate"
		if graceful {
			name = "graceful"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			writeFile(t, path, webYAML("v1"))
			s := newTestServer(t, Options{ConfigPath: path, AdminAddress: "127.0.0.1:0", Stats: stats.NewStore()})
			startRun(t, s)
			addr := addrOf(s, "web")
			q := "/drain_listeners"
			if graceful {
				q += "?graceful"
			}
			if code, body := adminDo(t, s, "POST", q); code != 200 {
				t.Fatalf("%s: %d %s", q, code, body)
			}
			wait.For(t, "the listener stops accepting", func() bool {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					return true
				}
				c.Close()
				return false
			})
			if code, body := adminDo(t, s, "GET", "/ready"); code != 503 || body != "DRAINING\n" {
				t.Errorf("/ready after drain: %d %q", code, body)
			}
			if admin.State(s.state.Load()) != admin.StateDraining {
				t.Errorf("state %v", admin.State(s.state.Load()))
			}
			if code, _ := adminDo(t, s, "POST", q); code != 500 {
				t.Errorf("second drain: status %d, want 500", code)
			}
		})
	}
}

// TestAccessLogStats checks that the access log writers' counters reach /stats under Envoy's
// access_logs.file.* names.
func TestAccessLogStats(t *testing.T) {
	// No goroutine check here: an access log output (its writer and its reopen-signal
	// watcher) lives for the process, shared by path across configuration updates.
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfg := `
static_resources:
  listeners:
  - name: web
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: web
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: ` + logPath + `
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: ok}}}]}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`
	path := filepath.Join(dir, "envoy.yaml")
	writeFile(t, path, cfg)
	st := stats.NewStore()
	s := newTestServer(t, Options{ConfigPath: path, AdminAddress: "127.0.0.1:0", Stats: st})
	startRun(t, s)
	addr := s.ListenerStatus()[0].Address.String()
	for i := 0; i < 3; i++ {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The line is accepted by the writer at the end of each stream, which may come a moment
	// after the client has its response.
	var body string
	wait.For(t, "access_logs.file.write_buffered to reach 3", func() bool {
		var code int
		code, body = adminDo(t, s, "GET", "/stats?filter=%5Eaccess_logs%5C.")
		if code != 200 {
			t.Fatalf("/stats: %d", code)
		}
		v, _ := statValue(st, "access_logs.file.write_buffered")
		return v >= 3
	})
	if !strings.Contains(body, "access_logs.file.write_completed: ") {
		t.Errorf("/stats lacks write_completed:\n%s", body)
	}
}
