package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Load reads every *.yaml and *.yml file of dir (names starting with a dot are skipped, which
// also skips the ..data directories of a Kubernetes ConfigMap volume while following its
// symlinked files), as envoyproxy/ratelimit reads its runtime config directory. Each file holds
// one domain and a domain may appear in one file only. An empty directory is a valid config with
// no domains: every request is then under no limit.
func Load(dir string) (*Config, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("config directory: %w", err)
	}
	var files []*File
	var errs []error
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if strings.HasPrefix(name, ".") || ext != ".yaml" && ext != ".yml" {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path) // follows symlinks
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f, err := Parse(path, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Build(files)
}

// Build puts parsed files together, rejecting a domain defined twice.
func Build(files []*File) (*Config, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	c := &Config{domains: map[string]*node{}}
	owner := map[string]string{}
	var errs []error
	for _, f := range files {
		if first, dup := owner[f.Domain]; dup {
			errs = append(errs, &Error{File: f.Name, Path: "domain", Reason: fmt.Sprintf("domain %q is already defined in %s", f.Domain, first)})
			continue
		}
		owner[f.Domain] = f.Name
		c.domains[f.Domain] = f.root
		c.Files = append(c.Files, f.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Watch calls Load again whenever something in dir changes (after a short quiet period, since
// an editor or a ConfigMap update writes several times), and hands the result to apply: the new
// Config, or the error with a nil Config, in which case the caller keeps the one it has. It
// returns when ctx is done.
func Watch(ctx context.Context, dir string, apply func(*Config, error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	const quiet = 100 * time.Millisecond
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-w.Events:
			if !ok {
				return nil
			}
			timer.Reset(quiet)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			apply(nil, fmt.Errorf("watch %s: %w", dir, err))
		case <-timer.C:
			apply(Load(dir))
		}
	}
}
