package httpfilter

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps typed_config type URLs to factories. Tests build their own; the process uses
// Default, filled by init functions of the filter packages (see httpfilter/all).
type Registry struct {
	mu        sync.RWMutex
	byTypeURL map[string]Factory
	byName    map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byTypeURL: map[string]Factory{}, byName: map[string]Factory{}}
}

// Default is the process-wide registry.
var Default = NewRegistry()

// Register adds f to Default. It panics on a duplicate name or type URL: two filters claiming
// one config type is a build error, not a runtime condition.
func Register(f Factory) { Default.Register(f) }

// Register adds f, panicking on duplicates.
func (r *Registry) Register(f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	info := f.Info()
	if info.Name == "" || len(info.TypeURLs) == 0 {
		panic("httpfilter: factory without name or type URLs")
	}
	if _, dup := r.byName[info.Name]; dup {
		panic(fmt.Sprintf("httpfilter: duplicate filter name %q", info.Name))
	}
	for _, u := range info.TypeURLs {
		if _, dup := r.byTypeURL[u]; dup {
			panic(fmt.Sprintf("httpfilter: duplicate type URL %q", u))
		}
	}
	r.byName[info.Name] = f
	for _, u := range info.TypeURLs {
		r.byTypeURL[u] = f
	}
}

// ByTypeURL returns the factory for a typed_config type URL.
func (r *Registry) ByTypeURL(typeURL string) (Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.byTypeURL[typeURL]
	return f, ok
}

// ByName returns the factory registered under a filter name.
func (r *Registry) ByName(name string) (Factory, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	f, ok := r.byName[name]
	return f, ok
}

// Infos lists every registered filter, sorted by name.
func (r *Registry) Infos() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.byName))
	for _, f := range r.byName {
		out = append(out, f.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
