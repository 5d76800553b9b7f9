package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/fsnotify/fsnotify"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/controller/simple"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// DefaultDebounce is how long a file must stay quiet before it is read again: one save is a
// burst of events (truncate, write, chmod, or a rename into place), and a read in the middle of
// it would see half a file.
const DefaultDebounce = 50 * time.Millisecond

// renameDebounce replaces the debounce after a file is renamed into place (an atomic save,
// a ConfigMap's "..data" swap): the new file is whole when it appears, so only the events of
// the same save need gathering. A write after it restores the full debounce.
const renameDebounce = 5 * time.Millisecond

// File is a source reading one config file: the simple Nuncio format or an Envoy v3
// bootstrap, whose static_resources are served.
type File struct {
	// Path is the config file.
	Path string
	// Debounce overrides DefaultDebounce when positive.
	Debounce time.Duration
	// Logger receives rejected changes; nil discards them.
	Logger *slog.Logger
}

// NewFile returns a source for the config file at path.
func NewFile(path string, log *slog.Logger) *File {
	return &File{Path: path, Logger: log}
}

// Load reads and translates the file once.
func (f *File) Load() (xdsresources.Resources, error) {
	data, err := readFile(f.Path)
	if err != nil {
		return xdsresources.Resources{}, err
	}
	return Translate(f.Path, data)
}

// readFile reads path; its errors start with the path once.
func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// Run implements Source. It watches the file's directory rather than the file, because editors
// and Kubernetes ConfigMap mounts replace a file by renaming another over it (the ConfigMap's
// "..data" symlink swap), which a watch on the file itself would miss.
func (f *File) Run(ctx context.Context, out chan<- xdsresources.Resources) error {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	debounce := f.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	abs, err := filepath.Abs(f.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("%s: watch: %w", f.Path, err)
	}
	defer w.Close()
	// Watch before the first read, so that a change made while it runs is not lost.
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("%s: watch: %w", f.Path, err)
	}

	last, err := readFile(f.Path)
	if err != nil {
		return err
	}
	cache := new(decodeCache)
	r, err := cache.translate(f.Path, last)
	if err != nil {
		return err
	}
	if !send(ctx, out, r) {
		return nil
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !concerns(ev, abs) {
				continue
			}
			wait := debounce
			if ev.Op&(fsnotify.Write|fsnotify.Remove) == 0 && ev.Op&fsnotify.Create != 0 {
				wait = min(debounce, renameDebounce)
			}
			timer.Reset(wait)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			log.Warn("config watch", "file", f.Path, "error", err)
		case <-timer.C:
			data, err := readFile(f.Path)
			if err != nil {
				// Between a remove and the create that follows it, or a real removal: either
				// way the last good set stays.
				log.Error("config unreadable, keeping the previous one", "error", err)
				continue
			}
			if bytes.Equal(data, last) {
				continue
			}
			r, err := cache.translate(f.Path, data)
			if err != nil {
				log.Error("config rejected, keeping the previous one", "file", f.Path, "error", err)
				continue
			}
			last = data
			if !send(ctx, out, r) {
				return nil
			}
		}
	}
}

// concerns reports whether ev may have changed the file at path.
func concerns(ev fsnotify.Event, path string) bool {
	if ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) == 0 {
		return false
	}
	return filepath.Clean(ev.Name) == path || filepath.Base(ev.Name) == "..data"
}

func send(ctx context.Context, out chan<- xdsresources.Resources, r xdsresources.Resources) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// Translate turns the bytes of a config file into the resources to serve. The format is told
// by the top-level apiVersion, as `nuncio run` tells it: the simple format has one, an Envoy
// bootstrap none. Errors start with path and name the field.
func Translate(path string, data []byte) (xdsresources.Resources, error) {
	return new(decodeCache).translate(path, data)
}

// Translator is Translate for successive versions of one file: it decodes, generates and
// validates only the listeners' virtual hosts, the listeners and the clusters whose JSON
// changed since the previous call, and returns the previous messages for the others, which
// the xDS server then neither hashes nor pushes again. It is not safe for concurrent use.
type Translator struct {
	c decodeCache
}

// Translate is the package's Translate, reusing what is unchanged since the previous call.
func (t *Translator) Translate(path string, data []byte) (xdsresources.Resources, error) {
	return t.c.translate(path, data)
}

// translate is Translate reusing what the cache holds from the file's previous version.
func (c *decodeCache) translate(path string, data []byte) (xdsresources.Resources, error) {
	r, err := c.generate(path, data, true)
	if errors.Is(err, xdsresources.ErrUnusedVirtualHosts) {
		// A route_config outside a connection manager (in some other filter's config): the
		// document is decoded with its listeners whole.
		r, err = c.generate(path, data, false)
	}
	if err != nil {
		return xdsresources.Resources{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.gen.Validate(r); err != nil {
		return xdsresources.Resources{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func (c *decodeCache) generate(path string, data []byte, split bool) (xdsresources.Resources, error) {
	b, vhosts, err := c.parse(path, data, split)
	if err != nil {
		return xdsresources.Resources{}, err
	}
	return c.gen.FromBootstrap(b, vhosts)
}

// parse reads either format. The document is converted to JSON once and the format told from
// that: at the scale of thousands of routes, YAML parsing is most of a reload's time, and the
// Envoy reader would otherwise parse the YAML a second time. When the fast path fails, the
// Envoy reader runs on the original bytes to report the error by field and line.
func (c *decodeCache) parse(path string, data []byte, split bool) (*bootstrapv3.Bootstrap, xdsresources.VirtualHosts, error) {
	js := data
	if !isJSON(data) {
		var err error
		if js, err = yaml.YAMLToJSON(data); err != nil {
			b, err := envoyconfig.UnmarshalBootstrap(data)
			return b, nil, err
		}
	}
	switch v := apiVersion(js); {
	case v == "":
		if b, vhosts, ok := c.decodeBootstrap(js, split); ok {
			return b, vhosts, nil
		}
		b, err := envoyconfig.UnmarshalBootstrap(data)
		return b, nil, err
	case v != v1alpha1.APIVersion:
		return nil, nil, fmt.Errorf("apiVersion: %q not supported (want %s, or an Envoy v3 bootstrap without apiVersion)", v, v1alpha1.APIVersion)
	}
	cfg, err := simple.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	// The simple format names certificate files relative to itself.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, nil, err
	}
	b, err := simple.Options{BaseDir: dir}.Translate(cfg)
	return b, nil, err
}

func isJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// apiVersion returns the top-level apiVersion of a JSON document, "" if it has none (an Envoy
// bootstrap) or the document does not parse (left to the Envoy reader to report).
func apiVersion(js []byte) string {
	// Envoy bootstraps have no such key; skip decoding a large one only to find that out.
	if !bytes.Contains(js, []byte(`"apiVersion"`)) {
		return ""
	}
	var head struct {
		APIVersion any `json:"apiVersion"`
	}
	if err := json.Unmarshal(js, &head); err != nil || head.APIVersion == nil {
		return ""
	}
	return strings.TrimSpace(fmt.Sprint(head.APIVersion))
}

var _ Source = (*File)(nil)
