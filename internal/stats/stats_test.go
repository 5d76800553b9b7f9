package stats

import (
	"math"
	"sync"
	"testing"
)

func TestScopeNamesAndRelease(t *testing.T) {
	s := NewStore()
	a := s.Scope("cluster.a")
	a.Counter("upstream_rq_total").Inc()
	a.Gauge("upstream_cx_active").Add(3)
	b := s.Scope("cluster.a.")
	b.Counter("upstream_rq_total").Add(2) // same stat, shared across scopes
	tests := []struct {
		name  string
		stat  string
		value int64
	}{
		{name: "shared counter", stat: "cluster.a.upstream_rq_total", value: 3},
		{name: "gauge", stat: "cluster.a.upstream_cx_active", value: 3},
	}
	all := map[string]int64{}
	for _, st := range s.All() {
		all[st.Name] = st.Value
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := all[tc.stat]; !ok || got != tc.value {
				t.Fatalf("%s = %d (%v), want %d", tc.stat, got, ok, tc.value)
			}
		})
	}
	a.Release()
	if n := len(s.All()); n != 1 {
		t.Fatalf("after releasing one scope %d stats remain, want the one still held", n)
	}
	b.Release()
	if n := len(s.All()); n != 0 {
		t.Fatalf("after releasing both scopes %d stats remain", n)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	for i := 1; i <= 100; i++ {
		h.Record(float64(i))
	}
	snap := h.Snapshot()
	if snap.Count != 100 || snap.Sum != 5050 {
		t.Fatalf("count %d sum %v", snap.Count, snap.Sum)
	}
	if p50 := snap.Quantile(0.5); p50 < 25 || p50 > 100 {
		t.Errorf("p50 = %v, want within the 50..100 bucket range", p50)
	}
	var empty Histogram
	if !math.IsNaN(empty.Snapshot().Quantile(0.5)) {
		t.Errorf("quantile of nothing should be NaN")
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s := NewStore()
	c := s.Scope("x").Counter("n")
	h := s.Scope("x").Histogram("t")
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				c.Inc()
				h.Record(1)
			}
		}()
	}
	wg.Wait()
	if c.Value() != 4000 || h.Snapshot().Count != 4000 || h.Snapshot().Sum != 4000 {
		t.Fatalf("counter %d histogram %+v", c.Value(), h.Snapshot())
	}
}

func TestUpdatesDoNotAllocate(t *testing.T) {
	s := NewStore()
	sc := s.Scope("x")
	c, g, h := sc.Counter("c"), sc.Gauge("g"), sc.Histogram("h")
	if n := testing.AllocsPerRun(100, func() { c.Inc(); g.Add(1); h.Record(12) }); n != 0 {
		t.Fatalf("%v allocations per update", n)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewStore().Scope("x").Counter("c")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewStore().Scope("x").Histogram("h")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Record(float64(i % 1000))
	}
}
