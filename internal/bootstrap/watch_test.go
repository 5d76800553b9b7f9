package bootstrap_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// renameOver saves as editors do: a new file beside the old one, renamed over it.
func renameOver(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	write(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir as a Kubernetes ConfigMap volume does: the file is a symlink to
// ..data/<name>, ..data a symlink to a timestamped directory holding the real file. It returns
// a function that publishes new content the way the kubelet does: a new directory, then an
// atomic rename of a new ..data link over the old one, then removal of the old directory.
func configMap(t *testing.T, dir, name, content string) (update func(content string)) {
	t.Helper()
	gen := 0
	publish := func(content string) {
		gen++
		ts := "..2026_01_01_00_00_0" + strconv.Itoa(gen)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, ts, name), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(content)
	if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
	return publish
}

// reads collects what a consumer of a watcher reads: the file's content (or the read error)
// after each change reported.
type reads struct {
	mu   sync.Mutex
	got  []string
	more chan struct{} // a value per new entry
}

func consume(t *testing.T, w *bootstrap.Watcher, path string) *reads {
	r := &reads{more: make(chan struct{}, 1000)}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-w.Changes():
			case <-done:
				return
			}
			data, err := os.ReadFile(path)
			s := string(data)
			if errors.Is(err, fs.ErrNotExist) {
				s = "<absent>"
			} else if err != nil {
				s = "<" + err.Error() + ">"
			}
			r.mu.Lock()
			r.got = append(r.got, s)
			r.mu.Unlock()
			r.more <- struct{}{}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return r
}

// waitRead waits until a read after a change saw want, and returns every read so far.
func (r *reads) waitRead(t *testing.T, want string) []string {
	t.Helper()
	deadline := time.After(wait.Timeout)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.got...)
		r.mu.Unlock()
		for _, g := range got {
			if g == want {
				return got
			}
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("no change read as %q; reads: %q", want, got)
		}
	}
}

// TestWatch replaces a watched file in each way files are commonly replaced and waits until a
// read after a reported change sees the new content.
func TestWatch(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out dir with the file at path holding "v1", and returns how to replace it.
		setup func(t *testing.T, dir, path string) func(content string)
		// between is what a read may see before the new content, beside the old one.
		between []string
	}{
		{
			name: "write in place",
			setup: func(t *testing.T, _, path string) func(string) {
				write(t, path, "v1")
				return func(c string) { write(t, path, c) }
			},
			between: []string{""}, // after the truncate, if the write is slow to follow
		},
		{
			name: "rename over (editor save)",
			setup: func(t *testing.T, _, path string) func(string) {
				write(t, path, "v1")
				return func(c string) { renameOver(t, path, c) }
			},
		},
		{
			name: "ConfigMap ..data symlink swap",
			setup: func(t *testing.T, dir, path string) func(string) {
				return configMap(t, dir, filepath.Base(path), "v1")
			},
			between: []string{"<absent>"}, // the old directory removed, in a read racing the swap
		},
		{
			name: "delete and recreate",
			setup: func(t *testing.T, _, path string) func(string) {
				write(t, path, "v1")
				return func(c string) {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
					write(t, path, c)
				}
			},
			between: []string{"<absent>", ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leak.Check(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "nuncio.yaml")
			replace := tc.setup(t, dir, path)
			w, err := bootstrap.Watch(path, bootstrap.WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(w.Close)
			r := consume(t, w, path)

			// Files beside the watched one are not its changes; what they would cause is
			// checked by the table of events in TestWatchDelay.
			write(t, filepath.Join(dir, "other.yaml"), "x")

			replace("v2")
			for _, g := range r.waitRead(t, "v2") {
				if g != "v1" && g != "v2" && !slices.Contains(tc.between, g) {
					t.Errorf("a read after a change saw %q", g)
				}
			}
			replace("v3")
			r.waitRead(t, "v3")
		})
	}
}

// TestWatchBurst writes a file many times in a row and checks that the burst is reported as
// one change, read after its last write.
func TestWatchBurst(t *testing.T) {
	leak.Check(t)
	const burst = 20
	// A long debounce, so that the writes of the burst fall within it even on a busy machine;
	// the test waits for the change, it does not time it.
	const debounce = 500 * time.Millisecond
	dir := t.TempDir()
	path := filepath.Join(dir, "nuncio.yaml")
	write(t, path, "v0")
	w, err := bootstrap.Watch(path, bootstrap.WatchOptions{Debounce: debounce})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	r := consume(t, w, path)

	start := time.Now()
	for i := 1; i <= burst; i++ {
		write(t, path, "burst "+strconv.Itoa(i))
	}
	took := time.Since(start)
	last := "burst " + strconv.Itoa(burst)
	r.waitRead(t, last)
	// A change after the burst ends the count: it is read after every change of the burst.
	renameOver(t, path, "after")
	got := r.waitRead(t, "after")
	if took >= debounce/2 {
		// The machine stalled within the burst: it was not one burst.
		t.Skipf("the %d writes took %v, too close to the %v debounce to count changes", burst, took, debounce)
	}
	if len(got) != 2 || got[0] != last {
		t.Errorf("reads after changes: %q, want [%q \"after\"]", got, last)
	}
}

// TestWatchMissingDirectory checks that a file in a directory that does not exist cannot be
// watched, and the error says which file.
func TestWatchMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "nuncio.yaml")
	_, err := bootstrap.Watch(path, bootstrap.WatchOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
		t.Fatalf("Watch = %v, want an error starting with the path", err)
	}
}
