package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

func clusterStatNames(st *stats.Store, name string) []string {
	var out []string
	for _, s := range st.All() {
		if strings.HasPrefix(s.Name, "cluster."+name+".") {
			out = append(out, s.Name)
		}
	}
	return out
}

// A changed cluster keeps counting into the same stats; a removed one's stats, the router's
// included, leave the store (and so /stats).
func TestClusterStatsReleasedOnRemoval(t *testing.T) {
	st := stats.NewStore()
	m := NewManager(Options{Stats: st})
	defer m.Close()
	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply([]*model.Cluster{staticCluster("gone", 1)}); err != nil {
		t.Fatal(err)
	}
	rs := m.Ref("gone").RouterStats()
	rs.RqTotal.Inc()
	rs.Code(200)
	rs.Code(599) // a code without a pre-made counter
	changed := staticCluster("gone", 1)
	changed.ConnectTimeout = 3 * time.Second
	if err := m.Apply([]*model.Cluster{changed}); err != nil {
		t.Fatal(err)
	}
	m.Ref("gone").RouterStats().RqTotal.Inc()
	names := clusterStatNames(st, "gone")
	for _, want := range []string{"cluster.gone.upstream_rq_total", "cluster.gone.upstream_rq_599", "cluster.gone.upstream_cx_total", "cluster.gone.membership_total"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("%s missing from %v", want, names)
		}
	}
	if got := m.Ref("gone").RouterStats().RqTotal.Value(); got != 2 {
		t.Errorf("upstream_rq_total = %d across the rebuild, want 2", got)
	}

	if err := m.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if left := clusterStatNames(st, "gone"); len(left) != 0 {
		t.Errorf("stats of a removed cluster remain: %v", left)
	}
}

// Counting a status code, common or rare, takes no lock and allocates nothing once its
// counter exists.
func TestRouterStatsCodeAllocs(t *testing.T) {
	rs := newRouterStats(stats.NewStore().Scope("cluster.a"))
	rs.Code(418)
	for _, code := range []int{200, 503, 418} {
		if n := testing.AllocsPerRun(1000, func() { rs.Code(code) }); n != 0 {
			t.Errorf("Code(%d): %v allocations", code, n)
		}
	}
}
