package bootstrap

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a config file must stay quiet after a write before it is read
// again: one save is a burst of events (truncate, write, chmod), and a read in the middle of
// it would see half a file.
const DefaultDebounce = 50 * time.Millisecond

// RenameDebounce replaces the debounce when the last event is the file appearing whole: an
// editor's rename of a new file over it, a Kubernetes ConfigMap's "..data" symlink swap. Only
// the other events of the same save need gathering then. A write after it restores the full
// debounce.
const RenameDebounce = 5 * time.Millisecond

// WatchOptions configure Watch.
type WatchOptions struct {
	// Debounce overrides DefaultDebounce when positive.
	Debounce time.Duration
	// Logger receives the watch's own errors; nil discards them.
	Logger *slog.Logger
}

// Watcher reports changes to one config file, one per settled burst of events.
//
// It watches the file's directory, not the file: editors save by renaming a new file over the
// old one, and a Kubernetes ConfigMap volume replaces its files by pointing the "..data"
// symlink at a new directory; a watch on the file itself would follow the old inode and miss
// both. Events for other files in the directory are ignored, and so are changes to the target
// of a symlink that points into another directory.
type Watcher struct {
	fs      *fsnotify.Watcher
	path    string // absolute and clean, as event names are
	wait    time.Duration
	log     *slog.Logger
	changes chan struct{}
	done    chan struct{}
}

// Watch starts watching the file at path. Start it before the first read of the file, so that
// a change made during that read is reported. Errors start with path.
func Watch(path string, opts WatchOptions) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("%s: watch: %w", path, err)
	}
	if err := fw.Add(filepath.Dir(abs)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("%s: watch: %w", path, err)
	}
	w := &Watcher{
		fs: fw, path: abs, wait: opts.Debounce, log: opts.Logger,
		changes: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if w.wait <= 0 {
		w.wait = DefaultDebounce
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	go w.loop()
	return w, nil
}

// Changes delivers a value once the file has changed and settled. Values do not queue: one
// pending value stands for any number of changes, since the reader reads the file as it is
// then.
func (w *Watcher) Changes() <-chan struct{} { return w.changes }

// Close stops watching; Changes delivers nothing after it returns.
func (w *Watcher) Close() {
	w.fs.Close()
	<-w.done
}

func (w *Watcher) loop() {
	defer close(w.done)
	timer := time.NewTimer(0)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if d, ok := w.delay(ev); ok {
				timer.Reset(d)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost, maybe some of this file's: read it again to be sure.
				timer.Reset(w.wait)
			}
			w.log.Warn("config watch", "file", w.path, "error", err)
		case <-timer.C:
			select {
			case w.changes <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

// delay returns how long to wait for the file to settle after ev, and false when ev does not
// concern the file. This is the one debounce rule: wait until no event has come for the
// debounce, or for RenameDebounce when the last event put a whole file in place.
func (w *Watcher) delay(ev fsnotify.Event) (time.Duration, bool) {
	if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
		return 0, false // chmod: the content is the same
	}
	if filepath.Clean(ev.Name) != w.path && filepath.Base(ev.Name) != "..data" {
		return 0, false
	}
	if ev.Op&(fsnotify.Write|fsnotify.Remove) == 0 && ev.Op&fsnotify.Create != 0 {
		return min(w.wait, RenameDebounce), true
	}
	return w.wait, true
}
