package abi

import (
	"sync"
	"sync/atomic"
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
}

// Metric is one custom metric. Value is the counter or gauge value, or for a histogram the
// sum of the recorded values (Count says how many).
type Metric struct {
	Name  string
	Type  MetricType
	Value atomic.Int64
	Count atomic.Uint64
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
	old := *m.list.Load()
	list := append(old[:len(old):len(old)], &Metric{Name: string(name), Type: t})
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
	default:
		x.Value.Store(int64(v))
	}
	return StatusOK
}
