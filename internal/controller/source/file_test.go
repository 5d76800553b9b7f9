package source_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func simpleConfig(endpoint string) string {
	return fmt.Sprintf(`apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 127.0.0.1:8080
  routes:
  - backend: api
backends:
- name: api
  endpoints: [%q]
`, endpoint)
}

// syncBuffer is a log sink safe for the source's goroutine and the test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func endpointOf(t *testing.T, r xdsresources.Resources) string {
	t.Helper()
	if len(r.Endpoints) != 1 {
		t.Fatalf("%d endpoint assignments, want 1", len(r.Endpoints))
	}
	sa := r.Endpoints[0].GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
	return fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
}

// writeAtomic replaces path by renaming a new file over it, as editors and ConfigMaps do.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestFileRun checks the file source end to end: the first set, a change written in place, a
// change renamed into place, a broken file that is logged and skipped, and a repair.
func TestFileRun(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nuncio.yaml")
	if err := os.WriteFile(path, []byte(simpleConfig("10.0.0.1:80")), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	f := source.NewFile(path, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan xdsresources.Resources)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	next := func() xdsresources.Resources {
		t.Helper()
		select {
		case r := <-out:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no resources sent")
			return xdsresources.Resources{}
		}
	}
	if got := endpointOf(t, next()); got != "10.0.0.1:80" {
		t.Fatalf("first set: endpoint %s", got)
	}

	if err := os.WriteFile(path, []byte(simpleConfig("10.0.0.2:80")), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := endpointOf(t, next()); got != "10.0.0.2:80" {
		t.Fatalf("after write: endpoint %s", got)
	}

	writeAtomic(t, path, simpleConfig("10.0.0.3:80"))
	if got := endpointOf(t, next()); got != "10.0.0.3:80" {
		t.Fatalf("after rename: endpoint %s", got)
	}

	// A broken file is logged with the file and the field, and nothing is sent.
	writeAtomic(t, path, strings.Replace(simpleConfig("10.0.0.4:80"), "backend: api", "backend: nope", 1))
	wait.For(t, "the rejection logged", func() bool { return strings.Contains(logs.String(), "config rejected") })
	for _, want := range []string{path, "listeners[0].routes[0].backend", "nope"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("rejection log lacks %q:\n%s", want, logs)
		}
	}
	select {
	case r := <-out:
		t.Fatalf("a broken file was sent: %v", endpointOf(t, r))
	case <-time.After(200 * time.Millisecond):
	}

	writeAtomic(t, path, simpleConfig("10.0.0.5:80"))
	if got := endpointOf(t, next()); got != "10.0.0.5:80" {
		t.Fatalf("after repair: endpoint %s", got)
	}
}

// TestFileRunBadStart checks that a source whose first read fails says why and does not run.
func TestFileRunBadStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nuncio.yaml")
	if err := os.WriteFile(path, []byte("static_resources: {listeners: [{name: x, bogus: 1}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := source.NewFile(path, nil).Run(context.Background(), make(chan xdsresources.Resources, 1))
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("Run = %v, want an error naming the file and the field", err)
	}
	err = source.NewFile(filepath.Join(dir, "missing.yaml"), nil).Run(context.Background(), make(chan xdsresources.Resources, 1))
	if err == nil {
		t.Fatal("Run on a missing file succeeded")
	}
}

// TestTranslate checks format detection and that errors name the file and what is wrong.
func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    string
		wantErr string
		want    func(xdsresources.Resources) bool
	}{
		{
			name: "simple config",
			data: simpleConfig("10.0.0.1:80"),
			want: func(r xdsresources.Resources) bool { return len(r.Routes) == 1 && len(r.Endpoints) == 1 },
		},
		{
			name: "envoy bootstrap",
			data: `static_resources: {clusters: [{name: c, load_assignment: {cluster_name: c}}]}`,
			want: func(r xdsresources.Resources) bool { return len(r.Clusters) == 1 && len(r.Endpoints) == 1 },
		},
		{
			name:    "unknown apiVersion",
			data:    "apiVersion: nuncio.dev/v9\nkind: Config\n",
			wantErr: `apiVersion: "nuncio.dev/v9" not supported`,
		},
		{
			name:    "empty file",
			data:    "\n",
			wantErr: "file is empty",
		},
		{
			name:    "proto validation",
			data:    `static_resources: {clusters: [{name: ""}]}`,
			wantErr: "Name",
		},
		{
			name:    "duplicate cluster",
			data:    `static_resources: {clusters: [{name: c}, {name: c}]}`,
			wantErr: `cluster "c": duplicate name`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := source.Translate("cfg.yaml", []byte(tc.data))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "cfg.yaml: ") {
					t.Fatalf("err = %v, want one starting with the file and containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(r) {
				t.Errorf("unexpected resources: %+v", r)
			}
		})
	}
}
