package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// File is a source reading one config file: the simple Nuncio format or an Envoy v3
// bootstrap, whose static_resources are served.
type File struct {
	// Path is the config file.
	Path string
	// Debounce overrides bootstrap.DefaultDebounce when positive.
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
	data, err := bootstrap.Read(f.Path)
	if err != nil {
		return xdsresources.Resources{}, err
	}
	return Translate(f.Path, data)
}

// Run implements Source. The file is watched with bootstrap.Watch (its directory, so that an
// editor's rename and a ConfigMap's symlink swap are seen; one debounce rule), and read again
// after each settled change; a read of unchanged bytes sends nothing.
func (f *File) Run(ctx context.Context, out chan<- xdsresources.Resources) error {
	log := f.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Watch before the first read, so that a change made while it runs is not lost.
	w, err := bootstrap.Watch(f.Path, bootstrap.WatchOptions{Debounce: f.Debounce, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()

	last, err := bootstrap.Read(f.Path)
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
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Changes():
			data, err := bootstrap.Read(f.Path)
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

func send(ctx context.Context, out chan<- xdsresources.Resources, r xdsresources.Resources) bool {
	select {
	case out <- r:
		return true
	case <-ctx.Done():
		return false
	}
}

// Translate turns the bytes of a config file into the resources to serve. The format is told
// by bootstrap.Sniff, as for `nuncio run`: the simple format has an apiVersion, an Envoy
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
	doc, err := bootstrap.Sniff(path, data)
	if err != nil {
		return xdsresources.Resources{}, fmt.Errorf("%s: %w", path, err)
	}
	r, err := c.generate(doc, true)
	if errors.Is(err, xdsresources.ErrUnusedVirtualHosts) {
		// A route_config outside a connection manager (in some other filter's config): the
		// document is decoded with its listeners whole.
		r, err = c.generate(doc, false)
	}
	if err != nil {
		return xdsresources.Resources{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.gen.Validate(r); err != nil {
		return xdsresources.Resources{}, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func (c *decodeCache) generate(doc *bootstrap.Document, split bool) (xdsresources.Resources, error) {
	b, vhosts, err := c.parse(doc, split)
	if err != nil {
		return xdsresources.Resources{}, err
	}
	return c.gen.FromBootstrap(b, vhosts)
}

// parse reads the document in its format. An Envoy bootstrap is decoded from the JSON the
// sniffer converted it to, piece by piece through the cache: at the scale of thousands of
// routes, YAML parsing and JSON decoding are most of a reload's time. When that fails, the
// Envoy reader runs on the original bytes to report the error by field and line.
func (c *decodeCache) parse(doc *bootstrap.Document, split bool) (*bootstrapv3.Bootstrap, xdsresources.VirtualHosts, error) {
	if doc.Format == bootstrap.Envoy {
		if b, vhosts, ok := c.decodeBootstrap(doc.JSON, split); ok {
			return b, vhosts, nil
		}
	}
	b, err := doc.Bootstrap()
	return b, nil, err
}

var _ Source = (*File)(nil)
