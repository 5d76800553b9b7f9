package abi

import (
	"sync"
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// MetricType is proxy_metric_type_t.
type MetricType uint32

// Metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

// Metrics are the custom metrics plugins define. A name defined twice (by several instances
// of a plugin) is one metric, as in Envoy, so that every instance adds to the same counter.
type Metrics struct {
	mu     sync.Mutex
	byName map[string]uint32
	list   atomic.Pointer[[]*Metric]
	scope  *stats.Scope
}

// Metric is one custom metric. Value is the counter or gauge value, or for a histogram the
// sum of the recorded values (Count says how many).
type Metric struct {
	Name  string
	Type  MetricType
	Value atomic.Int64
	Count atomic.Uint64

	// The stat the metric is exported as (ExportTo), or nil.
	counter *stats.Counter
	gauge   *stats.Gauge
	hist    *stats.Histogram
}

// CustomPrefix is the namespace of plugin-defined stats, Envoy's: a metric "hits" is the
// stat wasmcustom.hits.
const CustomPrefix = "wasmcustom."

// ExportTo makes every metric defined from now on a stat of sc too, named CustomPrefix+name,
// as Envoy names plugin metrics. A name already used by a stat of another kind is not
// exported. Call it before the plugin starts.
func (m *Metrics) ExportTo(sc *stats.Scope) {
	m.mu.Lock()
	m.scope = sc
	m.mu.Unlock()
}

// NewMetrics returns an empty registry.
func NewMetrics() *Metrics {
	m := &Metrics{byName: map[string]uint32{}}
	m.list.Store(&[]*Metric{})
	return m
}

// Define returns the id of the metric named name, creating it.
func (m *Metrics) Define(t MetricType, name []byte) (uint32, Status) {
	if t > MetricHistogram {
		return 0, StatusBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.byName[string(name)]; ok {
		return id, StatusOK
	}
	x := &Metric{Name: string(name), Type: t}
	if m.scope != nil {
		switch t {
		case MetricCounter:
			x.counter = m.scope.Counter(CustomPrefix + x.Name)
		case MetricGauge:
			x.gauge = m.scope.Gauge(CustomPrefix + x.Name)
		default:
			x.hist = m.scope.Histogram(CustomPrefix + x.Name)
		}
	}
	old := *m.list.Load()
	list := append(old[:len(old):len(old)], x)
	m.list.Store(&list)
	id := uint32(len(list)) // ids start at 1
	m.byName[string(name)] = id
	return id, StatusOK
}

// Get returns metric id, or nil.
func (m *Metrics) Get(id uint32) *Metric {
	list := *m.list.Load()
	if id == 0 || int(id) > len(list) {
		return nil
	}
	return list[id-1]
}

// All returns every metric defined so far, for the stats exporter.
func (m *Metrics) All() []*Metric { return *m.list.Load() }

func (m *Metrics) increment(id uint32, delta int64) Status {
	x := m.Get(id)
	switch {
	case x == nil:
		return StatusNotFound
	case x.Type == MetricHistogram:
		return StatusBadArgument
	case x.Type == MetricCounter && delta < 0:
		return StatusBadArgument
	}
	x.Value.Add(delta)
	switch {
	case x.counter != nil:
		x.counter.Add(uint64(delta))
	case x.gauge != nil:
		x.gauge.Add(delta)
	}
	return StatusOK
}

func (m *Metrics) record(id uint32, v uint64) Status {
	x := m.Get(id)
	switch {
	case x == nil:
		return StatusNotFound
	case x.Type == MetricHistogram:
		x.Value.Add(int64(v))
		x.Count.Add(1)
		if x.hist != nil {
			x.hist.Record(float64(v))
		}
	default:
		x.Value.Store(int64(v))
		switch {
		case x.counter != nil:
			x.counter.Set(uint64(v))
		case x.gauge != nil:
			x.gauge.Set(int64(v))
		}
	}
	return StatusOK
}
