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
	for i, l := range b.Listeners {
		cl, err := listener.Compile(l, func(fc *model.FilterChain) (listener.ChainHandler, error) {
			if fc.HCM == nil {
				return nil, fmt.Errorf("filter chain %q: no network filter to run", fc.Name)
			}
			if fc.HCM.RouteConfig == nil {
				return nil, fmt.Errorf("filter chain %q: http_connection_manager has no route_config", fc.Name)
			}
			rt, err := route.Compile(fc.HCM.RouteConfig, opts.Clusters.Ref)
			if err != nil {
				return nil, fmt.Errorf("route_config %q: %w", fc.HCM.RouteConfig.Name, err)
			}
			slot, fresh := slots.get(l.Name + "/" + chainKey(l, fc) + "/" + fc.HCM.RouteConfig.Name)
			if fresh {
				// Nothing serves from a new slot yet, so it can be filled now; a slot in use
				// changes only when the whole snapshot commits.
				slot.Store(rt)
			} else {
				snap.routes = append(snap.routes, pendingRoute{slot: slot, table: rt})
			}
			return hcm.New(fc.HCM, slot, hcm.Options{
				Logger: opts.Logger, HealthFailed: opts.HealthFailed, BufferLimit: l.BufferLimitBytes,
			})
		})
		if err != nil {
			return nil, fmt.Errorf("listeners[%d] %q: %w", i, l.Name, err)
		}
		snap.Listeners = append(snap.Listeners, cl)
	}
	return snap, nil
}

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
