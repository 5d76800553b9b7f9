package client

import (
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
)

// Resource is one dynamic resource as a config dump shows it.
type Resource struct {
	Name string
	// Version is the version_info of the response that brought it (state of the world) or
	// the resource's own version (incremental).
	Version string
	// Message is the resource as received; nil when only a refused version is known.
	Message     proto.Message
	LastUpdated time.Time
	// Warming is set on a listener or cluster held but not yet in force, because something
	// it names (a route table, endpoints, a secret) has not arrived.
	Warming bool
	// Error is the last refused version of the resource, when it was refused after the one
	// held was accepted (or none was).
	Error *Failure
}

// Failure is a refused version of a resource: Envoy's UpdateFailureState.
type Failure struct {
	Version, Details string
	Message          proto.Message
	At               time.Time
}

// Dump is the dynamic configuration, for /config_dump.
type Dump struct {
	// Versions is the version_info last accepted per type (listeners, routes, clusters,
	// endpoints, secrets).
	ListenersVersion, RoutesVersion, ClustersVersion, EndpointsVersion, SecretsVersion string
	// Listeners and Clusters hold, for a resource whose newer version warms, two entries:
	// the one in force, then the warming one.
	Listeners, Routes, Clusters, Endpoints, Secrets []Resource
}

// Dump returns the dynamic resources held. The messages are shared: callers must not change
// them.
func (c *Client) Dump() Dump {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Dump{
		ListenersVersion: c.types[kindLDS].version, RoutesVersion: c.types[kindRDS].version,
		ClustersVersion: c.types[kindCDS].version, EndpointsVersion: c.types[kindEDS].version,
		SecretsVersion: c.types[kindSDS].version,
	}
	d.Listeners = c.dumpWarmable(kindLDS, c.applied.listeners.meta)
	d.Clusters = c.dumpWarmable(kindCDS, c.applied.clusters.meta)
	d.Routes = c.dumpPlain(kindRDS)
	d.Endpoints = c.dumpPlain(kindEDS)
	d.Secrets = c.dumpPlain(kindSDS)
	return d
}

func (c *Client) failure(k kind, name string) *Failure {
	f, ok := c.failed[k][name]
	if !ok {
		return nil
	}
	return &Failure{Version: f.version, Details: f.details, Message: f.msg, At: f.at}
}

// dumpWarmable lists listeners or clusters: the version in force (from active), and the
// version held when it is another one, which is warming.
func (c *Client) dumpWarmable(k kind, active map[string]rmeta) []Resource {
	held := c.res.meta[k]
	names := map[string]bool{}
	for n := range held {
		names[n] = true
	}
	for n := range active {
		names[n] = true
	}
	for n := range c.failed[k] {
		names[n] = true
	}
	var out []Resource
	for _, name := range sortedKeys(names) {
		a, running := active[name]
		h, ok := held[name]
		if running {
			out = append(out, Resource{Name: name, Version: a.version, Message: a.msg, LastUpdated: a.updated})
		}
		if ok && (!running || h.msg != a.msg) {
			out = append(out, Resource{Name: name, Version: h.version, Message: h.msg, LastUpdated: h.updated, Warming: true})
		}
		if f := c.failure(k, name); f != nil {
			if len(out) == 0 || out[len(out)-1].Name != name {
				out = append(out, Resource{Name: name})
			}
			out[len(out)-1].Error = f
		}
	}
	return out
}

func (c *Client) dumpPlain(k kind) []Resource {
	held := c.res.meta[k]
	names := map[string]bool{}
	for n := range held {
		names[n] = true
	}
	for n := range c.failed[k] {
		names[n] = true
	}
	var out []Resource
	for _, name := range sortedKeys(names) {
		r := Resource{Name: name, Error: c.failure(k, name)}
		if h, ok := held[name]; ok {
			r.Version, r.Message, r.LastUpdated = h.version, h.msg, h.updated
		}
		out = append(out, r)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
