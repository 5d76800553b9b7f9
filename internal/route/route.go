// Package route compiles route configurations into immutable tables and matches requests
// against them without allocating.
package route

// The declarations below are the contract the connection manager and the router rely on; the
// compiler and matchers that fill them live beside this file.

// PerFilterConfig returns the compiled typed_per_filter_config for a filter name, or nil.
func (e *Entry) PerFilterConfig(name string) any {
	if e == nil {
		return nil
	}
	return e.perFilter[name]
}

// PerFilterConfig returns the virtual host's typed_per_filter_config for a filter, or nil.
func (v *VirtualHost) PerFilterConfig(name string) any {
	if v == nil {
		return nil
	}
	return v.perFilter[name]
}

// Entry is one compiled route.
type Entry struct {
	Name      string
	perFilter map[string]any
}

// VirtualHost is one compiled virtual host.
type VirtualHost struct {
	Name      string
	perFilter map[string]any
}
