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
}

// Options are the collaborators a build needs.
type Options struct {
	// Clusters resolves the cluster names routes refer to.
	Clusters *cluster.Manager
	Logger   *slog.Logger
	// HealthFailed reports whether the admin API failed health checks.
	HealthFailed func() bool
}

var version atomic.Uint64

// Build compiles b. Route tables resolve cluster names to slots in opts.Clusters; clusters
// themselves are applied by the caller, which owns their lifecycle.
func Build(b *model.Bootstrap, source any, opts Options) (*Snapshot, error) {
	snap := &Snapshot{Version: version.Add(1), Built: time.Now(), Model: b, Source: source}
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
			return hcm.New(fc.HCM, rt, hcm.Options{Logger: opts.Logger, HealthFailed: opts.HealthFailed})
		})
		if err != nil {
			return nil, fmt.Errorf("listeners[%d] %q: %w", i, l.Name, err)
		}
		snap.Listeners = append(snap.Listeners, cl)
	}
	return snap, nil
}

// Store publishes the snapshot in force. Reads never lock.
type Store struct{ cur atomic.Pointer[Snapshot] }

// Load returns the snapshot in force (nil before the first Swap).
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// Swap publishes n and returns the previous snapshot.
func (s *Store) Swap(n *Snapshot) *Snapshot { return s.cur.Swap(n) }
