// Package snapshot compiles a validated model.Bootstrap into the runtime objects the data
// plane serves from (listeners with their filter-chain handlers and route tables), and
// publishes the result atomically.
//
// Build either succeeds completely or returns an error and changes nothing, so the caller can
// keep the last good snapshot in force.
package snapshot

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/hcm"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// Snapshot is one compiled configuration. It is immutable.
type Snapshot struct {
	Version   uint64
	Built     time.Time
	Model     *model.Bootstrap
	Listeners []*listener.Compiled
	// Source is the configuration as given (an Envoy bootstrap proto), for /config_dump.
	Source any

	routes []pendingRoute
}

type pendingRoute struct {
	slot  *route.Slot
	table *route.Table
	prev  *route.Table
}

// Options are the collaborators a build needs.
type Options struct {
	// Clusters resolves the cluster names routes refer to.
	Clusters *cluster.Manager
	Logger   *slog.Logger
	// HealthFailed reports whether the admin API failed health checks.
	HealthFailed func() bool
	// Routes keeps route table slots across builds so open connections see route changes.
	Routes *RouteSlots
}

var version atomic.Uint64

// Build compiles b. Route tables resolve cluster names to slots in opts.Clusters; clusters
// themselves are applied by the caller, which owns their lifecycle.
func Build(b *model.Bootstrap, source any, opts Options) (*Snapshot, error) {
	snap := &Snapshot{Version: version.Add(1), Built: time.Now(), Model: b, Source: source}
	slots := opts.Routes
	if slots == nil {
		slots = NewRouteSlots()
	}
	rdsTables := make(map[string]*model.RouteConfig, len(b.RouteConfigs))
	for _, rc := range b.RouteConfigs {
		rdsTables[rc.Name] = rc
	}
	// An RDS table is compiled once per build and its slot shared by every connection
	// manager that names it, so an RDS update is one swap.
	rdsSlots := map[string]*route.Slot{}
	for i, l := range b.Listeners {
		cl, err := listener.Compile(l, func(fc *model.FilterChain) (listener.ChainHandler, error) {
			if fc.HCM == nil {
				return nil, fmt.Errorf("filter chain %q: no network filter to run", fc.Name)
			}
			var slot *route.Slot
			switch rds := fc.HCM.RDS; {
			case rds != nil:
				slot = rdsSlots[rds.RouteConfigName]
				if slot != nil {
					break
				}
				rc := rdsTables[rds.RouteConfigName]
				if rc == nil {
					return nil, fmt.Errorf("filter chain %q: route configuration %q (RDS) not available", fc.Name, rds.RouteConfigName)
				}
				var err error
				if slot, err = snap.stage(slots, RDSKey(rds.RouteConfigName), rc, opts); err != nil {
					return nil, err
				}
				rdsSlots[rds.RouteConfigName] = slot
			case fc.HCM.RouteConfig == nil:
				return nil, fmt.Errorf("filter chain %q: http_connection_manager has no route_config", fc.Name)
			default:
				var err error
				key := l.Name + "/" + chainKey(l, fc) + "/" + fc.HCM.RouteConfig.Name
				if slot, err = snap.stage(slots, key, fc.HCM.RouteConfig, opts); err != nil {
					return nil, err
				}
			}
			return hcm.New(fc.HCM, slot, hcm.Options{
				Logger: opts.Logger, HealthFailed: opts.HealthFailed, BufferLimit: l.BufferLimitBytes,
				Clusters: clusterResolver(opts.Clusters),
			})
		})
		if err != nil {
			return nil, fmt.Errorf("listeners[%d] %q: %w", i, l.Name, err)
		}
		snap.Listeners = append(snap.Listeners, cl)
	}
	return snap, nil
}

// stage compiles rc for the slot named key. A new slot is filled now, since nothing serves
// from it yet; a slot in use changes only when the whole snapshot commits.
func (s *Snapshot) stage(slots *RouteSlots, key string, rc *model.RouteConfig, opts Options) (*route.Slot, error) {
	rt, err := route.Compile(rc, opts.Clusters.Ref)
	if err != nil {
		return nil, fmt.Errorf("route_config %q: %w", rc.Name, err)
	}
	slot, fresh := slots.get(key)
	if fresh {
		slot.Store(rt)
	} else {
		s.routes = append(s.routes, pendingRoute{slot: slot, table: rt})
	}
	return slot, nil
}

// RDSKey is the RouteSlots key of the route table named name delivered by RDS: one slot per
// name, shared by every listener that names it.
func RDSKey(name string) string { return "rds/" + name }

// chainKey names a filter chain within its listener: by name when it has one, else by
// position, since unnamed chains are common in Envoy configs.
func chainKey(l *model.Listener, fc *model.FilterChain) string {
	if fc.Name != "" {
		return "name:" + fc.Name
	}
	if fc == l.DefaultFilterChain {
		return "default"
	}
	for i, c := range l.FilterChains {
		if c == fc {
			return "index:" + strconv.Itoa(i)
		}
	}
	return "unknown"
}

// Commit publishes the snapshot's route tables into their slots, so every open connection's
// new streams use them. It returns a function that restores the previous tables, for when a
// later step of applying the snapshot fails.
func (s *Snapshot) Commit() (rollback func()) {
	for i := range s.routes {
		s.routes[i].prev = s.routes[i].slot.Store(s.routes[i].table)
	}
	return func() {
		for _, r := range s.routes {
			r.slot.Store(r.prev)
		}
	}
}

// RouteSlots maps route configurations (by listener, filter chain and route config name) to
// the slots their connection managers read.
type RouteSlots struct {
	mu sync.Mutex
	m  map[string]*route.Slot
}

// NewRouteSlots returns an empty registry.
func NewRouteSlots() *RouteSlots { return &RouteSlots{m: map[string]*route.Slot{}} }

// Lookup returns the slot for key (see RDSKey), or nil when no build has made one.
func (r *RouteSlots) Lookup(key string) *route.Slot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key]
}

func (r *RouteSlots) get(key string) (*route.Slot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.m[key]; ok {
		return s, false
	}
	s := new(route.Slot)
	r.m[key] = s
	return s, true
}

// Store publishes the snapshot in force. Reads never lock.
type Store struct{ cur atomic.Pointer[Snapshot] }

// Load returns the snapshot in force (nil before the first Swap).
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// Swap publishes n and returns the previous snapshot.
func (s *Store) Swap(n *Snapshot) *Snapshot { return s.cur.Swap(n) }

// clusterResolver is what filters that call clusters by name get (hcm.ClusterConfig): the
// manager's slots, or nil (every name an empty slot) in builds without a manager.
func clusterResolver(m *cluster.Manager) func(string) *cluster.Ref {
	if m == nil {
		return nil
	}
	return m.Ref
}
