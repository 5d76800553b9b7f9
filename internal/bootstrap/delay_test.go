package bootstrap

import (
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestWatchDelay checks the debounce rule event by event: which events concern the watched
// file, and how long each makes the watcher wait for the file to settle.
func TestWatchDelay(t *testing.T) {
	const debounce = 50 * time.Millisecond
	w := &Watcher{path: "/etc/nuncio/nuncio.yaml", wait: debounce}
	tests := []struct {
		name     string
		ev       fsnotify.Event
		want     time.Duration
		concerns bool
	}{
		{name: "write", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Write}, want: debounce, concerns: true},
		{name: "renamed into place", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Create}, want: RenameDebounce, concerns: true},
		{name: "created and written", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Create | fsnotify.Write}, want: debounce, concerns: true},
		{name: "removed", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Remove}, want: debounce, concerns: true},
		{name: "renamed away", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Rename}, want: debounce, concerns: true},
		{name: "ConfigMap ..data swapped", ev: fsnotify.Event{Name: "/etc/nuncio/..data", Op: fsnotify.Create}, want: RenameDebounce, concerns: true},
		{name: "uncleaned name", ev: fsnotify.Event{Name: "/etc/nuncio//nuncio.yaml", Op: fsnotify.Write}, want: debounce, concerns: true},
		{name: "chmod", ev: fsnotify.Event{Name: "/etc/nuncio/nuncio.yaml", Op: fsnotify.Chmod}},
		{name: "another file", ev: fsnotify.Event{Name: "/etc/nuncio/other.yaml", Op: fsnotify.Write}},
		{name: "editor's swap file", ev: fsnotify.Event{Name: "/etc/nuncio/.nuncio.yaml.swp", Op: fsnotify.Create}},
		{name: "ConfigMap's new link before its rename", ev: fsnotify.Event{Name: "/etc/nuncio/..data_tmp", Op: fsnotify.Create}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := w.delay(tc.ev)
			if ok != tc.concerns || got != tc.want {
				t.Errorf("delay(%v) = %v, %v; want %v, %v", tc.ev, got, ok, tc.want, tc.concerns)
			}
		})
	}
}
