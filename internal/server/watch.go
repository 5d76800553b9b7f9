package server

import (
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileWatcher reports changes to one file. It watches the file's directory, because editors
// and Kubernetes ConfigMap mounts replace files by rename, which a watch on the file itself
// would lose.
type fileWatcher struct {
	w       *fsnotify.Watcher
	changes chan struct{}
	done    chan struct{}
}

// debounce coalesces the bursts of events one save produces.
const debounce = 100 * time.Millisecond

func watchFile(path string, log *slog.Logger) (*fileWatcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, err
	}
	fw := &fileWatcher{w: w, changes: make(chan struct{}, 1), done: make(chan struct{})}
	go fw.loop(abs, log)
	return fw, nil
}

func (fw *fileWatcher) loop(path string, log *slog.Logger) {
	defer close(fw.done)
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case ev, ok := <-fw.w.Events:
			if !ok {
				if timer != nil {
					timer.Stop()
				}
				return
			}
			if filepath.Clean(ev.Name) != path && filepath.Base(ev.Name) != "..data" {
				continue
			}
			if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			select {
			case fw.changes <- struct{}{}:
			default:
			}
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			log.Warn("config watch", "error", err)
		}
	}
}

// Changes delivers one value per settled change.
func (fw *fileWatcher) Changes() <-chan struct{} { return fw.changes }

// Close stops watching.
func (fw *fileWatcher) Close() {
	fw.w.Close()
	<-fw.done
}
