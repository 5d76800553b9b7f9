// Package stats holds Nuncio's counters, gauges and histograms under Envoy's stat names
// (cluster.<name>.upstream_rq_total, http.<prefix>.downstream_rq_2xx, …).
//
// Stats are resolved once, when configuration is compiled, into pointers that the request path
// updates with a single atomic operation: no lookup, no lock, no allocation. A Store owns every
// stat by name; components take a Scope (a name prefix) and keep the pointers they need. When a
// cluster or listener goes away its scope is released and its stats leave the Store, so memory
// follows configuration.
package stats

import (
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Counter only goes up (until reset by the admin API).
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value is the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Reset zeroes the counter (admin /reset_counters).
func (c *Counter) Reset() { c.v.Store(0) }

// Set replaces the value. It is for counters that mirror a count another component keeps
// itself, copied when the stats are read.
func (c *Counter) Set(n uint64) { c.v.Store(n) }

// Gauge goes up and down.
type Gauge struct{ v atomic.Int64 }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Add adds n (which may be negative).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Set replaces the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value is the current value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// Bounds are Envoy's default histogram bucket upper bounds (in the unit recorded, usually
// milliseconds), so dashboards built for Envoy read ours unchanged.
var Bounds = [...]float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// Histogram counts recorded values into Bounds buckets, keeping the sum and count.
type Histogram struct {
	buckets [len(Bounds) + 1]atomic.Uint64 // the last one is +Inf
	count   atomic.Uint64
	sumBits atomic.Uint64 // float64 bits, updated by compare-and-swap
}

// Record adds one observation.
func (h *Histogram) Record(v float64) {
	i := sort.SearchFloat64s(Bounds[:], v)
	h.buckets[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot is a histogram's state at one moment: cumulative counts per bound.
type Snapshot struct {
	Cumulative [len(Bounds) + 1]uint64
	Count      uint64
	Sum        float64
}

// Snapshot reads the histogram. Concurrent Records may be partly included.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	var run uint64
	for i := range h.buckets {
		run += h.buckets[i].Load()
		s.Cumulative[i] = run
	}
	s.Count = h.count.Load()
	s.Sum = math.Float64frombits(h.sumBits.Load())
	return s
}

// Quantile estimates the q-quantile (0..1) by linear interpolation inside the bucket.
func (s Snapshot) Quantile(q float64) float64 {
	total := s.Cumulative[len(s.Cumulative)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	lower, prev := 0.0, uint64(0)
	for i, c := range s.Cumulative {
		if float64(c) >= rank {
			if i == len(Bounds) {
				return Bounds[len(Bounds)-1]
			}
			upper := Bounds[i]
			inBucket := c - prev
			if inBucket == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(prev))/float64(inBucket)
		}
		if i < len(Bounds) {
			lower = Bounds[i]
		}
		prev = c
	}
	return Bounds[len(Bounds)-1]
}

// Kind tells stat types apart in listings.
type Kind uint8

const (
	KindCounter Kind = iota
	KindGauge
	KindHistogram
)

type entry struct {
	kind Kind
	c    *Counter
	g    *Gauge
	h    *Histogram
	refs int // scopes holding the stat; it leaves the store at zero
}

// Store is the set of all stats by full name. It is safe for concurrent use; its methods are
// for configuration time and the admin API, never the request path.
type Store struct {
	mu sync.Mutex
	m  map[string]*entry
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{m: map[string]*entry{}} }

// Default is the process-wide store.
var Default = NewStore()

func (s *Store) get(name string, kind Kind) *entry {
	e, ok := s.m[name]
	if !ok {
		e = &entry{kind: kind}
		switch kind {
		case KindCounter:
			e.c = new(Counter)
		case KindGauge:
			e.g = new(Gauge)
		case KindHistogram:
			e.h = new(Histogram)
		}
		s.m[name] = e
	}
	return e
}

// Scope is a name prefix within a store, e.g. "cluster.backend." A Scope remembers the
// stats it handed out so Release can drop them.
type Scope struct {
	store  *Store
	prefix string
	mu     sync.Mutex
	names  []string
}

// Scope returns a scope whose stat names start with prefix (a trailing dot is added).
func (s *Store) Scope(prefix string) *Scope {
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	return &Scope{store: s, prefix: prefix}
}

func (sc *Scope) take(name string, kind Kind) *entry {
	full := sc.prefix + name
	sc.store.mu.Lock()
	e := sc.store.get(full, kind)
	e.refs++
	sc.store.mu.Unlock()
	sc.mu.Lock()
	sc.names = append(sc.names, full)
	sc.mu.Unlock()
	return e
}

// Counter returns the counter prefix+name, creating it if needed. Two scopes asking for the
// same name share it (a cluster rebuilt by a config update keeps counting).
func (sc *Scope) Counter(name string) *Counter { return sc.take(name, KindCounter).c }

// Gauge returns the gauge prefix+name.
func (sc *Scope) Gauge(name string) *Gauge { return sc.take(name, KindGauge).g }

// Histogram returns the histogram prefix+name.
func (sc *Scope) Histogram(name string) *Histogram { return sc.take(name, KindHistogram).h }

// Release drops this scope's claim on its stats; those no other scope holds leave the store.
func (sc *Scope) Release() {
	sc.mu.Lock()
	names := sc.names
	sc.names = nil
	sc.mu.Unlock()
	sc.store.mu.Lock()
	for _, n := range names {
		if e, ok := sc.store.m[n]; ok {
			if e.refs--; e.refs <= 0 {
				delete(sc.store.m, n)
			}
		}
	}
	sc.store.mu.Unlock()
}

// Stat is one stat in a listing.
type Stat struct {
	Name      string
	Kind      Kind
	Value     int64 // counters and gauges
	Histogram Snapshot
}

// All lists every stat sorted by name.
func (s *Store) All() []Stat {
	s.mu.Lock()
	out := make([]Stat, 0, len(s.m))
	for name, e := range s.m {
		st := Stat{Name: name, Kind: e.kind}
		switch e.kind {
		case KindCounter:
			st.Value = int64(e.c.Value())
		case KindGauge:
			st.Value = e.g.Value()
		case KindHistogram:
			st.Histogram = e.h.Snapshot()
		}
		out = append(out, st)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ResetCounters zeroes every counter.
func (s *Store) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.m {
		if e.kind == KindCounter {
			e.c.Reset()
		}
	}
}
