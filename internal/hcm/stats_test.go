package hcm

import (
	"runtime"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

func statOf(st *stats.Store, name string) (stats.Stat, bool) {
	for _, s := range st.All() {
		if s.Name == name {
			return s, true
		}
	}
	return stats.Stat{}, false
}

func TestConnStatsCount(t *testing.T) {
	st := stats.NewStore()
	c := new(Config)
	cs := newConnStats(c, st, "ingress")
	start := time.Now().Add(-3 * time.Millisecond)
	cs.count(start, 200)
	cs.count(start, 503)
	cs.count(start, 0)         // reset before a response: a request, with no class
	cs.count(time.Time{}, 200) // no request was read: not counted
	want := map[string]int64{
		"http.ingress.downstream_rq_total": 3,
		"http.ingress.downstream_rq_2xx":   1,
		"http.ingress.downstream_rq_5xx":   1,
		"http.ingress.downstream_rq_4xx":   0,
	}
	for name, v := range want {
		s, ok := statOf(st, name)
		if !ok || s.Value != v {
			t.Errorf("%s = %d (present %v), want %d", name, s.Value, ok, v)
		}
	}
	h, _ := statOf(st, "http.ingress.downstream_rq_time")
	if h.Histogram.Count != 3 || h.Histogram.Sum < 9 {
		t.Errorf("downstream_rq_time count %d sum %v, want 3 requests of at least 3 ms", h.Histogram.Count, h.Histogram.Sum)
	}
	runtime.KeepAlive(c)
}

// Counting a request is on the request path: it must not allocate.
func TestConnStatsCountAllocs(t *testing.T) {
	c := new(Config)
	cs := newConnStats(c, stats.NewStore(), "ingress")
	start := time.Now()
	if n := testing.AllocsPerRun(1000, func() { cs.count(start, 200) }); n != 0 {
		t.Errorf("count allocates %v times per request", n)
	}
	runtime.KeepAlive(c)
}

func TestConnStatsReleasedWithConfig(t *testing.T) {
	st := stats.NewStore()
	func() {
		c := new(Config)
		newConnStats(c, st, "gone")
	}()
	kept := new(Config)
	newConnStats(kept, st, "kept")
	wait.For(t, "the stats of an unreachable Config to leave the store", func() bool {
		runtime.GC()
		_, present := statOf(st, "http.gone.downstream_rq_total")
		return !present
	})
	if _, ok := statOf(st, "http.kept.downstream_rq_total"); !ok {
		t.Error("stats of a live Config left the store")
	}
	runtime.KeepAlive(kept)
}

func BenchmarkConnStatsCount(b *testing.B) {
	c := new(Config)
	cs := newConnStats(c, stats.NewStore(), "ingress")
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		cs.count(start, 200)
	}
	runtime.KeepAlive(c)
}
