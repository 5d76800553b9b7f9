package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// lis describes one listener of a test config: it answers every request with body, and with
// serverName in the Server header when set.
type lis struct {
	name       string
	port       int // 0 asks for any free port
	body       string
	serverName string
}

func (l lis) yaml() string {
	sn := ""
	if l.serverName != "" {
		sn = "\n          server_name: " + l.serverName
	}
	return fmt.Sprintf(`
  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s%s
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /}
                direct_response: {status: 200, body: {inline_string: %q}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router`,
		l.name, l.port, l.name, sn, l.body)
}

// envoyYAML is a bootstrap with the given listeners and one static cluster per name, each with
// one endpoint on 127.0.0.1:1 (never dialled: the routes answer directly).
func envoyYAML(ls []lis, clusters ...string) string {
	var b strings.Builder
	b.WriteString("static_resources:\n  listeners:")
	for _, l := range ls {
		b.WriteString(l.yaml())
	}
	b.WriteString("\n  clusters:")
	for _, c := range clusters {
		fmt.Fprintf(&b, `
  - name: %s
    type: STATIC
    load_assignment:
      cluster_name: %s
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}]}]`, c, c)
	}
	if len(clusters) == 0 {
		b.WriteString(" []")
	}
	b.WriteString("\n")
	return b.String()
}

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	if opts.DrainTime == 0 {
		opts.DrainTime = wait.Timeout
	}
	return New(opts)
}

// apply decodes an Envoy bootstrap and applies it.
func apply(t *testing.T, s *Server, yaml string) error {
	t.Helper()
	src, err := envoyconfig.UnmarshalBootstrap([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decode.Bootstrap(src, httpfilter.Default)
	if err != nil {
		t.Fatal(err)
	}
	return s.Apply(b, src)
}

// addrOf returns the bound address of the named listener, or "".
func addrOf(s *Server, name string) string {
	for _, l := range s.ListenerStatus() {
		if l.Name == name && !l.Draining {
			return l.Address.String()
		}
	}
	return ""
}

func listenerNames(s *Server) []string {
	var out []string
	for _, l := range s.ListenerStatus() {
		if !l.Draining {
			out = append(out, l.Name)
		}
	}
	return out
}

func clusterNames(s *Server) []string {
	var out []string
	for _, c := range s.Clusters() {
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

// get fetches http://addr/ and returns the body and Server header.
func get(t *testing.T, c *http.Client, addr string) (body, server string) {
	t.Helper()
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Header.Get("Server")
}

// newClient returns a client; keepAlive false gives every request a new connection, so that
// it is served by the listener's current filter chains.
func newClient(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: wait.Timeout}
}

// holdPort binds a port for the test, so a config naming it cannot bind.
func holdPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestApplyRejectsUnbindableListener applies a config, then updates that fail because one
// listener cannot bind: each must leave the first config serving exactly as before (listeners,
// their settings, routes and clusters).
func TestApplyRejectsUnbindableListener(t *testing.T) {
	first := []lis{{name: "a", body: "v1"}, {name: "c", body: "c1"}}
	tests := []struct {
		name     string
		update   func(held int) []lis
		clusters []string
	}{
		{
			name: "new listener on a held port",
			update: func(held int) []lis {
				return []lis{{name: "a", body: "v2", serverName: "changed"}, {name: "b", port: held}, {name: "c", body: "c1"}}
			},
			clusters: []string{"one", "two"},
		},
		{
			name: "held port, a listener removed and another added",
			update: func(held int) []lis {
				return []lis{{name: "a", body: "v2"}, {name: "b", port: held}, {name: "d", body: "d"}}
			},
			clusters: []string{"two"},
		},
		{
			name: "existing listener moved to a held port",
			update: func(held int) []lis {
				return []lis{{name: "a", body: "v2"}, {name: "c", port: held}}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			s := newTestServer(t, Options{})
			t.Cleanup(func() { s.shutdown() })
			client := newClient(t, true)
			if err := apply(t, s, envoyYAML(first, "one")); err != nil {
				t.Fatal(err)
			}
			good := s.Snapshot()
			addrA, addrC := addrOf(s, "a"), addrOf(s, "c")
			if body, srv := get(t, client, addrA); body != "v1" || srv != "nuncio" {
				t.Fatalf("before the update: body %q, Server %q; want v1 from nuncio", body, srv)
			}

			err := apply(t, s, envoyYAML(tc.update(holdPort(t)), tc.clusters...))
			if err == nil {
				t.Fatal("update with a listener on a held port was accepted")
			}
			if !strings.Contains(err.Error(), "bind") {
				t.Errorf("error %q does not say the bind failed", err)
			}
			if s.Snapshot() != good {
				t.Errorf("the rejected snapshot was published")
			}
			if got := listenerNames(s); !slices.Equal(got, []string{"a", "c"}) {
				t.Errorf("listeners %v after the rejected update, want [a c]", got)
			}
			if got := addrOf(s, "a"); got != addrA {
				t.Errorf("listener a on %s, want %s", got, addrA)
			}
			if got := addrOf(s, "c"); got != addrC {
				t.Errorf("listener c on %s, want %s", got, addrC)
			}
			if got := clusterNames(s); !slices.Equal(got, []string{"one"}) {
				t.Errorf("clusters %v after the rejected update, want [one]", got)
			}
			fresh := newClient(t, false)
			for _, c := range []struct{ addr, body string }{{addrA, "v1"}, {addrC, "c1"}} {
				if body, srv := get(t, fresh, c.addr); body != c.body || srv != "nuncio" {
					t.Errorf("%s after the rejected update: body %q, Server %q; want %q from nuncio", c.addr, body, srv, c.body)
				}
			}
		})
	}
}

// freePort returns a port that was free a moment ago, for configs that need a fixed port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestApplyUpdates applies accepted updates that add, remove and rename listeners.
func TestApplyUpdates(t *testing.T) {
	tests := []struct {
		name   string
		first  func(port int) []lis
		update func(port int) []lis
		want   map[string]string // listener → body it serves after the update
		// samePort names a listener that must serve on the fixed port after the update.
		samePort string
	}{
		{
			name:   "listener added",
			first:  func(int) []lis { return []lis{{name: "a", body: "a1"}} },
			update: func(int) []lis { return []lis{{name: "a", body: "a2"}, {name: "d", body: "d"}} },
			want:   map[string]string{"a": "a2", "d": "d"},
		},
		{
			name:   "listener removed",
			first:  func(int) []lis { return []lis{{name: "a", body: "a1"}, {name: "c", body: "c"}} },
			update: func(int) []lis { return []lis{{name: "a", body: "a2"}} },
			want:   map[string]string{"a": "a2"},
		},
		{
			name:     "listener renamed on the same port",
			first:    func(p int) []lis { return []lis{{name: "a", port: p, body: "a1"}, {name: "c", body: "c"}} },
			update:   func(p int) []lis { return []lis{{name: "b", port: p, body: "b"}, {name: "c", body: "c"}} },
			want:     map[string]string{"b": "b", "c": "c"},
			samePort: "b",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			s := newTestServer(t, Options{})
			t.Cleanup(func() { s.shutdown() })
			port := freePort(t)
			if err := apply(t, s, envoyYAML(tc.first(port))); err != nil {
				t.Fatal(err)
			}
			if err := apply(t, s, envoyYAML(tc.update(port))); err != nil {
				t.Fatal(err)
			}
			var names []string
			for name := range tc.want {
				names = append(names, name)
			}
			slices.Sort(names)
			if got := listenerNames(s); !slices.Equal(got, names) {
				t.Errorf("listeners %v, want %v", got, names)
			}
			client := newClient(t, false)
			for name, want := range tc.want {
				if body, _ := get(t, client, addrOf(s, name)); body != want {
					t.Errorf("listener %s: body %q, want %q", name, body, want)
				}
			}
			if tc.samePort != "" {
				if got, want := addrOf(s, tc.samePort), fmt.Sprintf("127.0.0.1:%d", port); got != want {
					t.Errorf("listener %s on %s, want %s", tc.samePort, got, want)
				}
			}
		})
	}
}

func TestApplyFirstConfigRejected(t *testing.T) {
	leak.Check(t)
	s := newTestServer(t, Options{})
	t.Cleanup(func() { s.shutdown() })
	err := apply(t, s, envoyYAML([]lis{{name: "a"}, {name: "b", port: holdPort(t)}}, "one"))
	if err == nil {
		t.Fatal("config with a listener on a held port was accepted")
	}
	if s.Snapshot() != nil {
		t.Errorf("a snapshot is in force after the only config was rejected")
	}
	if got := listenerNames(s); len(got) != 0 {
		t.Errorf("listeners %v still running, want none", got)
	}
}

func TestAdminViews(t *testing.T) {
	leak.Check(t)
	s := newTestServer(t, Options{})
	t.Cleanup(func() { s.shutdown() })
	if _, err := s.ConfigDump(); err != ErrNoConfig {
		t.Errorf("ConfigDump before any config: %v, want ErrNoConfig", err)
	}
	if err := apply(t, s, envoyYAML([]lis{{name: "a"}, {name: "b"}}, "one", "two")); err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, l := range s.Listeners() {
		names = append(names, l.Name)
		if l.Address != addrOf(s, l.Name) || strings.HasSuffix(l.Address, ":0") {
			t.Errorf("listener %s reported on %q, bound on %q", l.Name, l.Address, addrOf(s, l.Name))
		}
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("Listeners() = %v, want [a b]", names)
	}
	if got := clusterNames(s); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("Clusters() = %v, want [one two]", got)
	}
	for _, c := range s.Clusters() {
		if len(c.Hosts) != 1 || c.Hosts[0].Address != "127.0.0.1:1" {
			t.Errorf("cluster %s hosts %+v, want one on 127.0.0.1:1", c.Name, c.Hosts)
		}
	}
	info := s.ServerInfo()
	if info.CommandLineOptions.Mode != "Serve" || info.CommandLineOptions.DrainTime != wait.Timeout {
		t.Errorf("ServerInfo = %+v", info)
	}
}

// TestConfigDump checks that /config_dump has Envoy's shape: an envoy.admin.v3.ConfigDump that
// Envoy's own types parse, with the bootstrap, listeners and clusters in that order.
func TestConfigDump(t *testing.T) {
	s := newTestServer(t, Options{})
	t.Cleanup(func() { s.shutdown() })
	if err := apply(t, s, envoyYAML([]lis{{name: "a"}, {name: "b"}}, "one")); err != nil {
		t.Fatal(err)
	}
	data, err := s.ConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	var dump adminv3.ConfigDump
	if err := protojson.Unmarshal(data, &dump); err != nil {
		t.Fatalf("ConfigDump does not parse as envoy.admin.v3.ConfigDump: %v\n%s", err, data)
	}
	wantTypes := []string{
		"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
		"type.googleapis.com/envoy.admin.v3.ListenersConfigDump",
		"type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
	}
	var gotTypes []string
	for _, c := range dump.Configs {
		gotTypes = append(gotTypes, c.TypeUrl)
	}
	if !slices.Equal(gotTypes, wantTypes) {
		t.Fatalf("configs %v, want %v", gotTypes, wantTypes)
	}

	var boot adminv3.BootstrapConfigDump
	if err := dump.Configs[0].UnmarshalTo(&boot); err != nil {
		t.Fatal(err)
	}
	if n := len(boot.GetBootstrap().GetStaticResources().GetListeners()); n != 2 {
		t.Errorf("bootstrap dump has %d listeners, want 2", n)
	}
	var ls adminv3.ListenersConfigDump
	if err := dump.Configs[1].UnmarshalTo(&ls); err != nil {
		t.Fatal(err)
	}
	if ls.VersionInfo != formatVersion(s.Snapshot().Version) {
		t.Errorf("listeners version_info %q, want %d", ls.VersionInfo, s.Snapshot().Version)
	}
	if len(ls.StaticListeners) != 2 || ls.StaticListeners[0].LastUpdated == nil {
		t.Errorf("static_listeners = %v, want two with last_updated", ls.StaticListeners)
	}
	var cs adminv3.ClustersConfigDump
	if err := dump.Configs[2].UnmarshalTo(&cs); err != nil {
		t.Fatal(err)
	}
	if len(cs.StaticClusters) != 1 {
		t.Errorf("static_clusters = %v, want one", cs.StaticClusters)
	}
	// Tools written for Envoy read field names in snake_case.
	if !strings.Contains(string(data), `"static_resources"`) {
		t.Errorf("dump does not use proto field names")
	}
}

func TestFormatVersion(t *testing.T) {
	tests := []struct {
		name string
		in   uint64
		want string
	}{
		{name: "zero", in: 0, want: "0"},
		{name: "one digit", in: 7, want: "7"},
		{name: "several digits", in: 1234567890, want: "1234567890"},
		{name: "max", in: ^uint64(0), want: "18446744073709551615"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatVersion(tc.in); got != tc.want {
				t.Errorf("formatVersion(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// webYAML is a config with one listener, web, on a free port answering body.
func webYAML(body string) string { return envoyYAML([]lis{{name: "web", body: body}}) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameInto replaces path atomically, as editors and ConfigMap updates do.
func renameInto(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runUntilEnd runs s until the test ends: the cleanup cancels Run and checks that it returns
// nil. Run's result arrives on the channel returned; a caller that takes it must put it back.
func runUntilEnd(t *testing.T, s *Server) chan error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(wait.Timeout):
			t.Errorf("Run did not return after cancel")
		}
	})
	return done
}

// startRun runs s until the test ends (see runUntilEnd) and waits until its listener is
// bound.
func startRun(t *testing.T, s *Server) {
	t.Helper()
	done := runUntilEnd(t, s)
	wait.For(t, "listener web bound", func() bool {
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		return addrOf(s, "web") != ""
	})
}

func TestReload(t *testing.T) {
	leak.Check(t)
	path := filepath.Join(t.TempDir(), "nuncio.yaml")
	writeFile(t, path, webYAML("v1"))
	s := newTestServer(t, Options{ConfigPath: path, AdminAddress: "127.0.0.1:0"})
	startRun(t, s)
	client := newClient(t, true)
	addr := addrOf(s, "web")
	if body, _ := get(t, client, addr); body != "v1" {
		t.Fatalf("body %q, want v1", body)
	}

	tests := []struct {
		name       string
		content    string
		wantReject string // substring of the rejection; "" when the reload applies
		wantBody   string
	}{
		{
			name:       "bad field keeps the old config",
			content:    strings.Replace(webYAML("v2"), "status: 200", "status: 99", 1),
			wantReject: "static_resources.listeners[0]",
			wantBody:   "v1",
		},
		{
			name:       "syntax error keeps the old config",
			content:    "static_resources: [\n",
			wantReject: "yaml",
			wantBody:   "v1",
		},
		{
			name:       "empty file keeps the old config",
			content:    "# being rewritten\n",
			wantReject: "file is empty",
			wantBody:   "v1",
		},
		{
			name:     "route change reaches the open connection",
			content:  webYAML("v2"),
			wantBody: "v2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := s.LastRejection()
			writeFile(t, path, tc.content)
			err := s.Reload()
			if tc.wantReject != "" {
				if err == nil {
					t.Fatal("reload accepted a bad file")
				}
				rej := s.LastRejection()
				if rej == nil || rej == prev {
					t.Fatal("no rejection recorded")
				}
				if !strings.HasPrefix(rej.Reason, path+": ") || !strings.Contains(rej.Reason, tc.wantReject) {
					t.Errorf("rejection %q, want it to name %s and %q", rej.Reason, path, tc.wantReject)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			// The client keeps its connection alive, so this also shows that a route change
			// reaches new streams on a connection opened before it.
			if got := addrOf(s, "web"); got != addr {
				t.Errorf("listener moved from %s to %s", addr, got)
			}
			if body, _ := get(t, client, addr); body != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
		})
	}
}

func TestRunFirstConfigFails(t *testing.T) {
	leak.Check(t)
	tests := []struct {
		name    string
		content string
		admin   func(t *testing.T) string
		wantErr string
	}{
		{
			name:    "config does not load",
			content: "apiVersion: nuncio.dev/v1alpha1\nkind: Config\nbogus: 1\n",
			wantErr: "bogus",
		},
		{
			name:    "admin address taken",
			content: webYAML("x"),
			admin:   func(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", holdPort(t)) },
			wantErr: "admin",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nuncio.yaml")
			writeFile(t, path, tc.content)
			adminAddr := "127.0.0.1:0"
			if tc.admin != nil {
				adminAddr = tc.admin(t)
			}
			s := newTestServer(t, Options{ConfigPath: path, AdminAddress: adminAddr})
			err := s.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.wantErr)
			}
			if got := listenerNames(s); len(got) != 0 {
				t.Errorf("listeners %v left running", got)
			}
		})
	}
}

// TestRunWatchesFile changes the config file under a running server, both ways a file is
// commonly replaced, and waits for the new route to serve.
func TestRunWatchesFile(t *testing.T) {
	leak.Check(t)
	tests := []struct {
		name  string
		write func(t *testing.T, path, content string)
	}{
		{name: "atomic rename", write: renameInto},
		{name: "in-place write", write: writeFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "nuncio.yaml")
			writeFile(t, path, webYAML("v1"))
			s := newTestServer(t, Options{ConfigPath: path, AdminAddress: "127.0.0.1:0", Watch: true})
			startRun(t, s)
			client := newClient(t, true)
			addr := addrOf(s, "web")
			tc.write(t, path, webYAML("v2"))
			wait.For(t, "the new config serves", func() bool {
				body, _ := get(t, client, addr)
				return body == "v2"
			})
		})
	}
}
