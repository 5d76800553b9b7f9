package cluster

import (
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Ref is a stable slot for the cluster of one name. Route tables resolve cluster names to Refs
// when they are compiled; a CDS update stores a new *Cluster into the same Ref, so routes never
// look clusters up by name on the request path and never need rebuilding when a cluster
// changes.
type Ref struct {
	name   string
	cur    atomic.Pointer[Cluster]
	rstats atomic.Pointer[RouterStats] // see RouterStats
	store  *stats.Store                // where RouterStats go; nil = stats.Default
}

// NewRef returns an empty slot for name.
func NewRef(name string) *Ref { return &Ref{name: name} }

// Name is the cluster name the slot is for.
func (r *Ref) Name() string { return r.name }

// Load returns the cluster in force, or nil when no cluster of that name exists.
func (r *Ref) Load() *Cluster { return r.cur.Load() }

// Store publishes c (nil removes the cluster) and returns the previous one.
func (r *Ref) Store(c *Cluster) *Cluster { return r.cur.Swap(c) }
