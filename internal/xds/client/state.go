package client

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

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
	// meta says, per type and name, which version of each resource is held and when it came,
	// with the resource as received, for config dumps.
	meta [numKinds]map[string]rmeta
}

// rmeta is what a config dump shows of one accepted resource.
type rmeta struct {
	version string
	msg     proto.Message
	updated time.Time
	sum     [sha256.Size]byte // of the serialized resource
}

// failure is a resource's last refused version, for config dumps (error_state).
type failure struct {
	version, details string
	msg              proto.Message
	at               time.Time
}

func newResources() resources {
	r := resources{
		listeners: map[string]*model.Listener{}, routes: map[string]*model.RouteConfig{},
		clusters: map[string]*model.Cluster{}, endpoints: map[string][]model.LocalityEndpoints{},
		secrets: map[string]*model.Secret{},
	}
	for k := range r.meta {
		r.meta[k] = map[string]rmeta{}
	}
	return r
}

// names returns the names of the resources of kind k held.
func (r *resources) names(k kind) []string {
	switch k {
	case kindLDS:
		return slices.Sorted(maps.Keys(r.listeners))
	case kindRDS:
		return slices.Sorted(maps.Keys(r.routes))
	case kindCDS:
		return slices.Sorted(maps.Keys(r.clusters))
	case kindEDS:
		return slices.Sorted(maps.Keys(r.endpoints))
	case kindSDS:
		return slices.Sorted(maps.Keys(r.secrets))
	}
	return nil
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
	listeners inForce[model.Listener]
	clusters  inForce[model.Cluster]
	// routes are the RDS tables in force, by name (a placeholder after a timed-out fetch).
	routes map[string]*model.RouteConfig
	// sig identifies the running set of listeners, clusters and secrets; an update that
	// leaves it unchanged changes only route tables or endpoints.
	sig string
}

// inForce is the running listeners or clusters.
type inForce[T any] struct {
	versions map[string]version[T]
	// meta describes the running versions of the dynamic ones, which differ from those in
	// resources while a newer version warms.
	meta map[string]rmeta
}

func newInForce[T any]() inForce[T] {
	return inForce[T]{versions: map[string]version[T]{}, meta: map[string]rmeta{}}
}

// version is a running listener or cluster: as configured (src) and as run (eff, with its
// secrets and endpoints filled in).
type version[T any] struct{ src, eff *T }

// watchKey is one subscribed resource, for initial-fetch timers.
type watchKey struct {
	kind kind
	name string
}

// change is one resource of a response to put in force: a new version (value set) or a
// removal (value nil).
type change struct {
	name  string
	value any
	meta  rmeta
}

// rejection is a resource of a response that was refused, and why.
type rejection struct {
	name string
	err  error
}

// handleLocked decodes u and puts in force what it can. As Envoy does, each resource stands
// on its own: the valid ones are applied, and the ones that fail to decode or to apply are
// refused, each keeping its last good version. The error, when any were refused, names them
// and the field at fault; it becomes the NACK's error_detail.
func (c *Client) handleLocked(u *update) error {
	if u.err != nil {
		return u.err
	}
	changes, rejected, err := c.decodeUpdate(u)
	if err != nil {
		return err
	}
	rejected = append(rejected, c.applyChanges(u.kind, changes)...)
	ts := c.types[u.kind]
	refused := map[string]bool{}
	var msgs []string
	for _, r := range rejected {
		refused[r.name] = true
		msg := r.err.Error()
		if prefix := fmt.Sprintf("%s %q", u.kind, r.name); !strings.HasPrefix(msg, prefix) {
			msg = prefix + ": " + msg
		}
		msgs = append(msgs, msg)
		f := failure{version: u.version, details: msg, at: time.Now()}
		for _, res := range u.resources {
			if res.name == r.name {
				f.msg = res.msg
				if u.delta {
					f.version = res.version
				}
			}
		}
		c.failed[u.kind][r.name] = f
	}
	for _, ch := range changes {
		if refused[ch.name] {
			continue
		}
		delete(c.failed[u.kind], ch.name)
		if u.delta {
			if ch.value != nil {
				ts.versions[ch.name] = ch.meta.version
			} else {
				delete(ts.versions, ch.name)
			}
		}
		if ch.value != nil {
			c.stopTimer(watchKey{u.kind, ch.name})
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// decodeUpdate returns the changes u makes, and the resources that fail to decode.
func (c *Client) decodeUpdate(u *update) ([]change, []rejection, error) {
	ts := c.types[u.kind]
	var changes []change
	var rejected []rejection
	now := time.Now()
	seen := map[string]bool{}
	for i := range u.resources {
		r := &u.resources[i]
		if !ts.wildcard && !ts.want[r.name] {
			continue // not (or no longer) subscribed
		}
		if r.name == "" {
			return nil, nil, fmt.Errorf("%s without a name", u.kind)
		}
		if seen[r.name] {
			return nil, nil, fmt.Errorf("%s %q: listed twice", u.kind, r.name)
		}
		seen[r.name] = true
		if m, ok := c.res.meta[u.kind][r.name]; ok && m.sum == r.sum && c.res.has(u.kind, r.name) {
			// The resource in force, byte for byte: nothing to decode or apply. A state-of-
			// the-world response repeats every unchanged resource of its type.
			r.msg = m.msg
			delete(c.failed[u.kind], r.name)
			if u.delta {
				ts.versions[r.name] = r.version
			}
			continue
		}
		v, msg, err := c.decodeResource(u.kind, r.raw)
		r.msg = msg
		if err != nil {
			rejected = append(rejected, rejection{r.name, err})
			continue
		}
		version := u.version
		if u.delta {
			version = r.version
		}
		changes = append(changes, change{name: r.name, value: v, meta: rmeta{version: version, msg: r.msg, updated: now, sum: r.sum}})
	}
	removed := u.removed
	// A state-of-the-world response for a wildcard type (listeners, clusters) is the whole
	// set: whatever it leaves out is removed. For the other types it carries some of the
	// subscribed resources, and leaving one out does not remove it. A resource that is
	// present but refused is not removed: its last good version stays.
	if !u.delta && ts.wildcard {
		for _, name := range c.res.names(u.kind) {
			if !seen[name] {
				removed = append(removed, name)
			}
		}
	}
	for _, name := range removed {
		if c.res.has(u.kind, name) && !seen[name] {
			changes = append(changes, change{name: name})
		}
	}
	return changes, rejected, nil
}

// applyChanges puts changes in force, all at once if they apply together; otherwise it splits
// them in halves, and so on down to the single changes that do not apply, which it returns.
// Only an update with a bad resource pays for the extra builds, about two per bad resource
// and level of halving.
func (c *Client) applyChanges(k kind, changes []change) []rejection {
	if len(changes) == 0 {
		return nil
	}
	next, changed, err := c.candidate(k, changes)
	if err == nil {
		err = c.applyLocked(next, k, changed)
	}
	if err == nil {
		return nil
	}
	if len(changes) == 1 {
		return []rejection{{changes[0].name, err}}
	}
	half := len(changes) / 2
	return append(c.applyChanges(k, changes[:half]), c.applyChanges(k, changes[half:])...)
}

// candidate returns the resources with changes made, and the names changed.
func (c *Client) candidate(k kind, changes []change) (resources, map[string]bool, error) {
	next := c.res
	changed := make(map[string]bool, len(changes))
	meta := maps.Clone(next.meta[k])
	for _, ch := range changes {
		changed[ch.name] = true
		if ch.value == nil {
			delete(meta, ch.name)
		} else {
			meta[ch.name] = ch.meta
		}
	}
	next.meta[k] = meta
	switch k {
	case kindLDS:
		m := update1(next.listeners, changes)
		if err := staticClash("listener", c.static.Listeners, func(l *model.Listener) string { return l.Name }, m, changed); err != nil {
			return next, nil, err
		}
		next.listeners = m
	case kindRDS:
		next.routes = update1(next.routes, changes)
	case kindCDS:
		m := update1(next.clusters, changes)
		if err := staticClash("cluster", c.static.Clusters, func(c *model.Cluster) string { return c.Name }, m, changed); err != nil {
			return next, nil, err
		}
		next.clusters = m
	case kindEDS:
		next.endpoints = update1(next.endpoints, changes)
	case kindSDS:
		next.secrets = update1(next.secrets, changes)
	}
	return next, changed, nil
}

// update1 returns a copy of m with changes made.
// staticClash refuses an update that changed a resource of the static configuration's name
// (kind is "listener" or "cluster"): merged is the dynamic set after the update.
func staticClash[S, V any](kind string, static []S, name func(S) string, merged map[string]V, changed map[string]bool) error {
	for _, st := range static {
		n := name(st)
		if _, dup := merged[n]; dup && changed[n] {
			return fmt.Errorf("%s %q: a static %s has that name", kind, n, kind)
		}
	}
	return nil
}

func update1[V any](m map[string]V, changes []change) map[string]V {
	out := maps.Clone(m)
	for _, ch := range changes {
		if ch.value == nil {
			delete(out, ch.name)
		} else {
			out[ch.name] = ch.value.(V)
		}
	}
	return out
}

// decodeResource unmarshals and decodes a serialized resource. Route configurations go
// through the RDS cache, which decodes only their changed virtual hosts.
func (c *Client) decodeResource(k kind, raw []byte) (any, proto.Message, error) {
	if k == kindRDS {
		v, msg, err := c.rds.RouteConfig(raw, c.reg)
		if err != nil {
			// The refused message is kept for config dumps (error_state).
			rc := &routev3.RouteConfiguration{}
			if proto.Unmarshal(raw, rc) != nil {
				return nil, nil, err
			}
			return nil, rc, err
		}
		return v, msg, nil
	}
	m := kindInfo[k].new()
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, nil, err
	}
	var v any
	var err error
	switch k {
	case kindLDS:
		v, err = decode.Listener(m.(*listenerv3.Listener), c.reg)
	case kindCDS:
		v, err = decode.Cluster(m.(*clusterv3.Cluster))
	case kindEDS:
		v, err = decode.Endpoints(m.(*endpointv3.ClusterLoadAssignment))
	case kindSDS:
		v, err = decode.Secret(m.(*tlsv3.Secret))
	default:
		err = errors.New("unknown resource type")
	}
	return v, m, err
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
		for _, name := range slices.Sorted(maps.Keys(p.applied.clusters.versions)) {
			ac := p.applied.clusters.versions[name]
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
		if !slices.Contains(c.warming, name) {
			c.log.Info("xds: warming", "resource", name)
		}
	}
	c.warming = p.warming
	c.checkInitLocked()
}

// forget drops an unsubscribed resource.
func (c *Client) forget(k kind, name string) {
	key := watchKey{k, name}
	c.stopTimer(key)
	delete(c.expired, key)
	delete(c.types[k].versions, name)
	delete(c.failed[k], name)
	c.res.meta[k] = without(c.res.meta[k], name)
	switch k {
	case kindRDS:
		c.res.routes = without(c.res.routes, name)
		c.rds.Forget(name)
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
