package client

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// resources are the decoded resources the server sent, by name. The maps are replaced, never
// changed in place, so a candidate state shares the unchanged ones with the state in force.
type resources struct {
	listeners map[string]*model.Listener
	routes    map[string]*model.RouteConfig
	clusters  map[string]*model.Cluster
	endpoints map[string][]model.LocalityEndpoints // by EDS service name
	secrets   map[string]*model.Secret
}

func newResources() resources {
	return resources{
		listeners: map[string]*model.Listener{}, routes: map[string]*model.RouteConfig{},
		clusters: map[string]*model.Cluster{}, endpoints: map[string][]model.LocalityEndpoints{},
		secrets: map[string]*model.Secret{},
	}
}

func (r *resources) has(k kind, name string) bool {
	var ok bool
	switch k {
	case kindLDS:
		_, ok = r.listeners[name]
	case kindRDS:
		_, ok = r.routes[name]
	case kindCDS:
		_, ok = r.clusters[name]
	case kindEDS:
		_, ok = r.endpoints[name]
	case kindSDS:
		_, ok = r.secrets[name]
	}
	return ok
}

// applied is what is in force: the configuration each running listener and cluster was
// built from, kept so that an update that has to warm leaves the running version serving.
type applied struct {
	listeners map[string]appliedListener
	clusters  map[string]appliedCluster
	// routes are the RDS tables in force, by name (a placeholder after a timed-out fetch).
	routes map[string]*model.RouteConfig
	// sig identifies the running set of listeners, clusters and secrets; an update that
	// leaves it unchanged changes only route tables or endpoints.
	sig string
}

type appliedListener struct{ src, eff *model.Listener }

type appliedCluster struct{ src, eff *model.Cluster }

// watchKey is one subscribed resource, for initial-fetch timers.
type watchKey struct {
	kind kind
	name string
}

// handleLocked decodes u into a candidate state, builds the configuration it makes and puts
// it in force. An error leaves everything as it was; it becomes the NACK's error_detail.
func (c *Client) handleLocked(u *update) error {
	if u.err != nil {
		return u.err
	}
	next, changed, err := c.decodeUpdate(u)
	if err != nil {
		return err
	}
	if err := c.applyLocked(next, u.kind, changed); err != nil {
		return err
	}
	ts := c.types[u.kind]
	if u.delta {
		for _, r := range u.resources {
			if ts.wildcard || ts.want[r.name] {
				ts.versions[r.name] = r.version
			}
		}
		for _, n := range u.removed {
			delete(ts.versions, n)
		}
	}
	for name := range changed {
		if next.has(u.kind, name) {
			c.stopTimer(watchKey{u.kind, name})
		}
	}
	return nil
}

// decodeUpdate returns the state u leads to and the names it changed.
func (c *Client) decodeUpdate(u *update) (resources, map[string]bool, error) {
	ts := c.types[u.kind]
	next := c.res
	changed := map[string]bool{}
	// A state-of-the-world response for a wildcard type (listeners, clusters) is the whole
	// set: whatever it leaves out is removed. For the other types it carries some of the
	// subscribed resources, and leaving one out does not remove it.
	replace := !u.delta && ts.wildcard
	seen := map[string]bool{}
	decoded := map[string]any{}
	for _, r := range u.resources {
		if !ts.wildcard && !ts.want[r.name] {
			continue // not (or no longer) subscribed
		}
		if r.name == "" {
			return next, nil, fmt.Errorf("%s without a name", u.kind)
		}
		if seen[r.name] {
			return next, nil, fmt.Errorf("%s %q: listed twice", u.kind, r.name)
		}
		seen[r.name] = true
		v, err := c.decodeResource(u.kind, r.msg)
		if err != nil {
			return next, nil, fmt.Errorf("%s %q: %w", u.kind, r.name, err)
		}
		decoded[r.name] = v
		changed[r.name] = true
	}
	removed := u.removed
	switch u.kind {
	case kindLDS:
		m := update1(next.listeners, replace, decoded, removed, changed)
		for _, l := range c.static.Listeners {
			if _, dup := m[l.Name]; dup {
				return next, nil, fmt.Errorf("listener %q: a static listener has that name", l.Name)
			}
		}
		next.listeners = m
	case kindRDS:
		next.routes = update1(next.routes, replace, decoded, removed, changed)
	case kindCDS:
		m := update1(next.clusters, replace, decoded, removed, changed)
		for _, cl := range c.static.Clusters {
			if _, dup := m[cl.Name]; dup {
				return next, nil, fmt.Errorf("cluster %q: a static cluster has that name", cl.Name)
			}
		}
		next.clusters = m
	case kindEDS:
		next.endpoints = update1(next.endpoints, replace, decoded, removed, changed)
	case kindSDS:
		next.secrets = update1(next.secrets, replace, decoded, removed, changed)
	}
	return next, changed, nil
}

// update1 returns a copy of m with the decoded resources set and the removed ones deleted
// (or, to replace, just the decoded ones), recording the names that changed.
func update1[V any](m map[string]V, replace bool, decoded map[string]any, removed []string, changed map[string]bool) map[string]V {
	out := make(map[string]V, len(m)+len(decoded))
	if replace {
		for n := range m {
			if _, ok := decoded[n]; !ok {
				changed[n] = true
			}
		}
	} else {
		maps.Copy(out, m)
	}
	for n, v := range decoded {
		out[n] = v.(V)
	}
	for _, n := range removed {
		if _, ok := out[n]; ok {
			delete(out, n)
			changed[n] = true
		}
	}
	return out
}

func (c *Client) decodeResource(k kind, m any) (any, error) {
	switch k {
	case kindLDS:
		return decode.Listener(m.(*listenerv3.Listener), c.reg)
	case kindRDS:
		return decode.RouteConfig(m.(*routev3.RouteConfiguration), c.reg)
	case kindCDS:
		return decode.Cluster(m.(*clusterv3.Cluster))
	case kindEDS:
		return decode.Endpoints(m.(*endpointv3.ClusterLoadAssignment))
	case kindSDS:
		return decode.Secret(m.(*tlsv3.Secret))
	}
	return nil, errors.New("unknown resource type")
}

// applyLocked puts next in force. Route table and endpoint updates that leave the running
// listeners and clusters as they are go to their slots; anything else is applied whole.
func (c *Client) applyLocked(next resources, k kind, changed map[string]bool) error {
	p, err := c.build(next)
	if err != nil {
		return err
	}
	fast := p.applied.sig == c.applied.sig && c.applied.sig != ""
	switch {
	case fast && k == kindRDS:
		tables := map[string]*model.RouteConfig{}
		for name := range changed {
			if _, used := p.applied.routes[name]; used {
				tables[name] = p.applied.routes[name]
			}
		}
		if len(tables) > 0 {
			if err := c.opts.Applier.UpdateRoutes(tables); err != nil {
				return err
			}
		}
	case fast && k == kindEDS:
		for _, name := range slices.Sorted(maps.Keys(p.applied.clusters)) {
			ac := p.applied.clusters[name]
			if ac.src.EDS == nil || !changed[ac.src.EDS.ServiceName] {
				continue
			}
			if err := c.opts.Applier.SetEndpoints(name, next.endpoints[ac.src.EDS.ServiceName]); err != nil {
				return err
			}
		}
	default:
		if err := c.opts.Applier.Apply(p.model); err != nil {
			return err
		}
	}
	c.res = next
	c.commitLocked(p)
	return nil
}

// rebuildLocked builds and applies the current state, after something other than a response
// changed it (the static configuration, an initial fetch that timed out).
func (c *Client) rebuildLocked(why string) error {
	p, err := c.build(c.res)
	if err == nil {
		err = c.opts.Applier.Apply(p.model)
	}
	if err != nil {
		c.log.Error("xds: configuration not applied", "after", why, "error", err)
		return err
	}
	c.commitLocked(p)
	return nil
}

// commitLocked records p as in force and updates the subscriptions to what it names,
// forgetting resources no longer named.
func (c *Client) commitLocked(p *plan) {
	c.applied = p.applied
	for k := range numKinds {
		ts := c.types[k]
		if ts.wildcard {
			continue
		}
		want := p.want[k]
		for name := range ts.want {
			if _, ok := want[name]; !ok {
				c.forget(k, name)
			}
		}
		ts.want = make(map[string]bool, len(want))
		for name, src := range want {
			ts.want[name] = true
			c.startTimer(watchKey{k, name}, src.InitialFetchTimeout)
		}
	}
	for _, name := range p.warming {
		c.log.Info("xds: warming", "resource", name)
	}
}

// forget drops an unsubscribed resource.
func (c *Client) forget(k kind, name string) {
	key := watchKey{k, name}
	c.stopTimer(key)
	delete(c.expired, key)
	delete(c.types[k].versions, name)
	switch k {
	case kindRDS:
		c.res.routes = without(c.res.routes, name)
	case kindEDS:
		c.res.endpoints = without(c.res.endpoints, name)
	case kindSDS:
		c.res.secrets = without(c.res.secrets, name)
	}
}

func without[V any](m map[string]V, name string) map[string]V {
	if _, ok := m[name]; !ok {
		return m
	}
	out := maps.Clone(m)
	delete(out, name)
	return out
}

// startTimer arms the initial fetch timeout of a resource others wait for, unless it is
// here, already armed, or already expired.
func (c *Client) startTimer(key watchKey, d time.Duration) {
	if d <= 0 || c.closed || c.res.has(key.kind, key.name) || c.timers[key] != nil || c.expired[key] {
		return
	}
	c.timers[key] = time.AfterFunc(d, func() { c.fetchTimedOut(key) })
}

func (c *Client) stopTimer(key watchKey) {
	if t := c.timers[key]; t != nil {
		t.Stop()
		delete(c.timers, key)
	}
}

// fetchTimedOut lets what waits for key go ahead without it: a listener serves with an
// empty route table (404s), a cluster with no endpoints (503s), until it arrives.
func (c *Client) fetchTimedOut(key watchKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.timers[key] == nil {
		return
	}
	delete(c.timers, key)
	if c.res.has(key.kind, key.name) || !c.types[key.kind].want[key.name] {
		return
	}
	c.log.Warn("xds: initial fetch timed out; going ahead without it", "type", key.kind.String(), "name", key.name)
	c.expired[key] = true
	if c.rebuildLocked(key.kind.String()+" "+key.name+" initial fetch timeout") == nil {
		c.wake()
	}
}
