package cluster

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// healthServer is a loopback HTTP server whose /healthz answers 200 or 503 as told.
type healthServer struct {
	addr string
	down atomic.Bool
}

func newHealthServer(t *testing.T) *healthServer {
	s := &healthServer{}
	s.addr = loopback.HTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	}))
	return s
}

func (s *healthServer) port() uint32 {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return uint32(n)
}

func statValue(st *stats.Store, name string) int64 {
	for _, s := range st.All() {
		if s.Name == name {
			return s.Value
		}
	}
	return -1
}

// picked returns the addresses Choose returns over many picks.
func picked(c *Cluster, n int) map[string]int {
	out := map[string]int{}
	for i := range n {
		if h := c.Choose(&LBContext{Rnd: mix(uint64(i))}); h != nil {
			out[h.Address]++
		}
	}
	return out
}

func TestActiveHealthChecksSteerPicks(t *testing.T) {
	leak.Check(t)
	srvs := []*healthServer{newHealthServer(t), newHealthServer(t), newHealthServer(t)}
	srvs[2].down.Store(true) // fails from the start
	st := stats.NewStore()
	m := NewManager(Options{Stats: st})
	defer m.Close()
	mc := staticCluster("hc", srvs[0].port(), srvs[1].port(), srvs[2].port())
	mc.HealthCheck = &model.HealthCheck{
		Kind: model.HealthCheckHTTP, Timeout: time.Second, Interval: 5 * time.Millisecond,
		NoTrafficInterval: 5 * time.Millisecond, UnhealthyThreshold: 2, HealthyThreshold: 1,
		HTTP: &model.HTTPHealthCheck{Path: "/healthz"},
	}
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("hc").Load()
	// Apply waited for the first round: the failing host is already out.
	hosts := c.Hosts()
	if f := hosts[2].HealthFlags(); f&FailedActiveHC == 0 || f&PendingActiveHC != 0 {
		t.Fatalf("failing host flags %b, want failed and not pending", f)
	}
	if got := picked(c, 300); got[hosts[2].Address] != 0 || len(got) != 2 {
		t.Errorf("picks %v include the failing host", got)
	}
	if statValue(st, "cluster.hc.membership_healthy") != 2 || statValue(st, "cluster.hc.membership_total") != 3 {
		t.Errorf("membership healthy %d total %d, want 2 and 3",
			statValue(st, "cluster.hc.membership_healthy"), statValue(st, "cluster.hc.membership_total"))
	}

	srvs[0].down.Store(true)
	wait.For(t, "host 0 unhealthy", func() bool { return hosts[0].HealthFlags()&FailedActiveHC != 0 })
	// One healthy of three is under the 50% panic threshold: all three take requests.
	if got := picked(c, 300); len(got) != 3 {
		t.Errorf("picks %v in panic mode, want all three hosts", got)
	}
	srvs[0].down.Store(false)
	srvs[2].down.Store(false)
	wait.For(t, "all healthy", func() bool { return statValue(st, "cluster.hc.membership_healthy") == 3 })
	if statValue(st, "cluster.hc.health_check.attempt") <= 0 || statValue(st, "cluster.hc.health_check.failure") <= 0 {
		t.Error("health_check stats not counted")
	}
}

func TestNewHostsWaitForFirstCheck(t *testing.T) {
	leak.Check(t)
	a, b := newHealthServer(t), newHealthServer(t)
	m := NewManager(Options{Stats: stats.NewStore()})
	defer m.Close()
	mc := staticCluster("hc", a.port())
	mc.HealthCheck = &model.HealthCheck{
		Kind: model.HealthCheckTCP, Timeout: time.Second, Interval: time.Hour, NoTrafficInterval: time.Hour,
		UnhealthyThreshold: 1, HealthyThreshold: 1, TCP: &model.TCPHealthCheck{},
	}
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("hc").Load()
	if c.Hosts()[0].HealthFlags() != 0 {
		t.Fatalf("initial host flags %b after Apply, want healthy", c.Hosts()[0].HealthFlags())
	}
	eps := mc.Localities
	eps[0].Endpoints = append(eps[0].Endpoints, model.Endpoint{Address: model.SocketAddress{Host: "127.0.0.1", Port: b.port()}, Weight: 1})
	if err := m.SetEndpoints("hc", eps); err != nil {
		t.Fatal(err)
	}
	// The added host may or may not have been checked yet; once checked it is healthy and the
	// first host kept its verdict (no re-check with a one-hour interval).
	wait.For(t, "new host checked", func() bool { return c.Hosts()[1].HealthFlags() == 0 })
	if c.Hosts()[0].HealthFlags() != 0 {
		t.Error("existing host lost its verdict on an endpoint update")
	}
}

func TestOutlierEjectionExcludesHost(t *testing.T) {
	leak.Check(t)
	st := stats.NewStore()
	m := NewManager(Options{Stats: st})
	defer m.Close()
	mc := staticCluster("od", 1001, 1002, 1003)
	mc.OutlierDetection = &model.OutlierDetection{
		Interval: time.Hour, BaseEjectionTime: time.Hour, MaxEjectionTime: time.Hour, MaxEjectionPercent: 50,
		Consecutive5xx: 3, EnforcingConsecutive5xx: 100,
	}
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("od").Load()
	bad := c.Hosts()[1]
	for range 3 {
		bad.ReportResult(503, false)
	}
	if bad.HealthFlags()&FailedOutlierCheck == 0 {
		t.Fatal("host not ejected after 3 consecutive 5xx")
	}
	if got := picked(c, 300); got[bad.Address] != 0 {
		t.Errorf("ejected host picked %d times", got[bad.Address])
	}
	for name, want := range map[string]int64{
		"cluster.od.outlier_detection.ejections_active":                   1,
		"cluster.od.outlier_detection.ejections_enforced_total":           1,
		"cluster.od.outlier_detection.ejections_enforced_consecutive_5xx": 1,
		"cluster.od.membership_healthy":                                   2,
	} {
		if got := statValue(st, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	// Removing the ejected host clears its ejection.
	mc2 := staticCluster("od", 1001, 1003)
	mc2.LB, mc2.OutlierDetection = mc.LB, mc.OutlierDetection
	if err := m.SetEndpoints("od", mc2.Localities); err != nil {
		t.Fatal(err)
	}
	if got := statValue(st, "cluster.od.outlier_detection.ejections_active"); got != 0 {
		t.Errorf("ejections_active = %d after the host left", got)
	}
}

func TestReportResultWithoutOutlierDetection(t *testing.T) {
	m := NewManager(Options{Stats: stats.NewStore()})
	defer m.Close()
	if err := m.Apply([]*model.Cluster{staticCluster("plain", 1001)}); err != nil {
		t.Fatal(err)
	}
	h := m.Ref("plain").Load().Hosts()[0]
	if n := testing.AllocsPerRun(100, func() { h.ReportResult(503, false) }); n != 0 {
		t.Errorf("ReportResult allocates %v times", n)
	}
	if h.HealthFlags() != 0 {
		t.Error("flags set without outlier detection")
	}
}

func TestBreakers(t *testing.T) {
	st := stats.NewStore()
	m := NewManager(Options{Stats: st})
	defer m.Close()
	mc := staticCluster("cb", 1001)
	mc.CircuitBreakers = &model.CircuitBreakers{
		Default: model.Thresholds{MaxRequests: 2, MaxPendingRequests: 1, MaxRetries: 1},
		High: model.Thresholds{MaxRequests: 10, MaxPendingRequests: 10, MaxRetries: 10,
			RetryBudget: &model.RetryBudget{BudgetPercent: 50, MinRetryConcurrency: 1}},
	}
	if err := m.Apply([]*model.Cluster{mc}); err != nil {
		t.Fatal(err)
	}
	c := m.Ref("cb").Load()
	b := c.Breakers()
	first, second, third := b.TryRequest(), b.TryRequest(), b.TryRequest()
	if !first || !second || third {
		t.Error("max_requests 2 not enforced")
	}
	b.DoneRequest()
	if !b.TryRequest() {
		t.Error("a released request slot was not reusable")
	}
	if !b.TryPending() || b.TryPending() {
		t.Error("max_pending_requests 1 not enforced")
	}
	if !b.TryRetry() || b.TryRetry() {
		t.Error("max_retries 1 not enforced")
	}
	if got := statValue(st, "cluster.cb.upstream_rq_pending_overflow"); got != 2 {
		t.Errorf("upstream_rq_pending_overflow = %d, want 2", got)
	}
	b.ConnOverflow()
	if got := statValue(st, "cluster.cb.upstream_cx_overflow"); got != 1 {
		t.Errorf("upstream_cx_overflow = %d, want 1", got)
	}
	if got := statValue(st, "cluster.cb.upstream_rq_retry_overflow"); got != 1 {
		t.Errorf("upstream_rq_retry_overflow = %d, want 1", got)
	}

	// The retry budget: 50% of active + pending, at least 1.
	hb := c.BreakersHigh()
	if !hb.TryRetry() || hb.TryRetry() {
		t.Error("min_retry_concurrency 1 with nothing active")
	}
	hb.DoneRetry()
	for range 6 {
		hb.TryRequest()
	}
	n := 0
	for hb.TryRetry() {
		n++
	}
	if n != 3 {
		t.Errorf("%d retries allowed with 6 active requests and a 50%% budget, want 3", n)
	}

	t.Run("defaults", func(t *testing.T) {
		if err := m.Apply([]*model.Cluster{staticCluster("cb", 1001)}); err != nil {
			t.Fatal(err)
		}
		b := m.Ref("cb").Load().Breakers()
		for range 1024 {
			if !b.TryRequest() {
				t.Fatal("fewer than Envoy's 1024 requests allowed")
			}
		}
		if b.TryRequest() {
			t.Error("more than 1024 requests allowed")
		}
		for range 3 {
			b.TryRetry()
		}
		if b.TryRetry() {
			t.Error("more than Envoy's 3 retries allowed")
		}
	})
	if n := testing.AllocsPerRun(100, func() { b.TryRequest(); b.DoneRequest() }); n != 0 {
		t.Errorf("breakers allocate %v times", n)
	}
}
