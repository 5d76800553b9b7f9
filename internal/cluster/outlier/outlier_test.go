package outlier

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// envoyDefaults is what decoders produce for an empty outlier_detection.
func envoyDefaults() model.OutlierDetection {
	return model.OutlierDetection{
		Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second,
		MaxEjectionPercent: 10,
		Consecutive5xx:     5, EnforcingConsecutive5xx: 100,
		ConsecutiveGatewayFailure: 5, EnforcingConsecutiveGatewayFailure: 0,
		ConsecutiveLocalOriginFailure: 5, EnforcingConsecutiveLocalOriginFailure: 100,
		EnforcingSuccessRate: 100, EnforcingLocalOriginSuccessRate: 100,
		SuccessRateMinimumHosts: 5, SuccessRateRequestVolume: 100, SuccessRateStdevFactor: 1900,
		FailurePercentageThreshold: 85, EnforcingFailurePercentage: 0, EnforcingFailurePercentageLocalOrigin: 0,
		FailurePercentageMinimumHosts: 5, FailurePercentageRequestVolume: 50,
		SuccessfulActiveHealthCheckUnejectHost: true,
	}
}

type rig struct {
	d       *Detector
	store   *stats.Store
	now     time.Time
	changes atomic.Int32
	mons    []*Monitor
	flags   []atomic.Bool
}

func newRig(t *testing.T, cfg model.OutlierDetection, hosts int) *rig {
	r := &rig{store: stats.NewStore(), now: time.Unix(1000, 0), flags: make([]atomic.Bool, hosts)}
	r.d = New(&cfg, r.store.Scope("cluster.c"), func() { r.changes.Add(1) }, Options{
		Now: func() time.Time { return r.now }, Roll: func() uint32 { return 0 }, Manual: true,
	})
	for i := range hosts {
		r.mons = append(r.mons, r.d.Add(func(e bool) { r.flags[i].Store(e) }))
	}
	t.Cleanup(r.d.Close)
	return r
}

func (r *rig) stat(name string) int64 {
	for _, s := range r.store.All() {
		if s.Name == "cluster.c.outlier_detection."+name {
			return s.Value
		}
	}
	return -1
}

func (r *rig) report(i, n, status int, local bool) {
	for range n {
		r.mons[i].Report(status, local)
	}
}

func TestConsecutive5xx(t *testing.T) {
	r := newRig(t, envoyDefaults(), 10)
	r.report(0, 4, 500, false)
	r.report(0, 1, 200, false) // a success resets the run
	r.report(0, 4, 503, false)
	if r.flags[0].Load() {
		t.Fatal("ejected after runs of 4")
	}
	r.report(0, 1, 502, false)
	if !r.flags[0].Load() || !r.mons[0].Ejected() {
		t.Fatal("not ejected after 5 consecutive 5xx")
	}
	for name, want := range map[string]int64{
		"ejections_active": 1, "ejections_enforced_total": 1, "ejections_enforced_consecutive_5xx": 1,
		"ejections_detected_consecutive_5xx": 1, "ejections_detected_consecutive_gateway_failure": 1,
		"ejections_enforced_consecutive_gateway_failure": 0,
	} {
		if got := r.stat(name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if r.changes.Load() != 1 {
		t.Errorf("onChange called %d times, want 1", r.changes.Load())
	}
}

func TestEjectionTimeGrowsAndShrinks(t *testing.T) {
	cfg := envoyDefaults()
	cfg.MaxEjectionTime = 70 * time.Second
	r := newRig(t, cfg, 10)
	eject := func() {
		t.Helper()
		r.report(0, 5, 500, false)
		if !r.mons[0].Ejected() {
			t.Fatal("not ejected")
		}
	}
	tickAt := func(d time.Duration) {
		r.now = r.now.Add(d)
		r.d.Tick()
	}
	eject() // 1st: 30s
	tickAt(29 * time.Second)
	if !r.mons[0].Ejected() {
		t.Fatal("returned before 30s")
	}
	tickAt(time.Second)
	if r.mons[0].Ejected() {
		t.Fatal("still ejected after 30s")
	}
	eject() // 2nd: 60s
	tickAt(59 * time.Second)
	if !r.mons[0].Ejected() {
		t.Fatal("second ejection shorter than 60s")
	}
	tickAt(time.Second)
	eject() // 3rd: 90s capped at 70s
	tickAt(69 * time.Second)
	if !r.mons[0].Ejected() {
		t.Fatal("third ejection shorter than the 70s cap")
	}
	tickAt(time.Second)
	if r.mons[0].Ejected() {
		t.Fatal("third ejection longer than the 70s cap")
	}
	// Healthy intervals bring the multiplier back down to 1.
	for range 5 {
		tickAt(10 * time.Second)
	}
	eject()
	tickAt(30 * time.Second)
	if r.mons[0].Ejected() {
		t.Fatal("after healthy intervals the ejection should be back to 30s")
	}
	if got := r.mons[0].Ejections(); got != 4 {
		t.Errorf("Ejections = %d, want 4", got)
	}
	if got := r.stat("ejections_active"); got != 0 {
		t.Errorf("ejections_active = %d, want 0", got)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	cfg := envoyDefaults()
	cfg.MaxEjectionPercent = 20
	r := newRig(t, cfg, 10)
	for i := range 4 {
		r.report(i, 5, 500, false)
	}
	ejected := 0
	for _, m := range r.mons {
		if m.Ejected() {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("%d of 10 hosts ejected with max_ejection_percent 20, want 2", ejected)
	}
	if got := r.stat("ejections_overflow"); got != 2 {
		t.Errorf("ejections_overflow = %d, want 2", got)
	}
	// One host of a small cluster can always go, as in Envoy.
	small := newRig(t, envoyDefaults(), 3)
	small.report(0, 5, 500, false)
	if !small.mons[0].Ejected() {
		t.Error("first host of three not ejected under the default 10%")
	}
}

func TestGatewayAndLocalOrigin(t *testing.T) {
	t.Run("gateway failures enforced", func(t *testing.T) {
		cfg := envoyDefaults()
		cfg.EnforcingConsecutiveGatewayFailure = 100
		cfg.Consecutive5xx = 100
		r := newRig(t, cfg, 10)
		r.report(0, 4, 503, false)
		r.report(0, 1, 500, false) // not a gateway failure: resets the gateway run
		r.report(0, 5, 504, false)
		if !r.mons[0].Ejected() || r.stat("ejections_enforced_consecutive_gateway_failure") != 1 {
			t.Error("not ejected for 5 consecutive gateway failures")
		}
	})
	t.Run("local failures count as 503 unless split", func(t *testing.T) {
		r := newRig(t, envoyDefaults(), 10)
		r.report(0, 5, 0, true)
		if !r.mons[0].Ejected() || r.stat("ejections_enforced_consecutive_5xx") != 1 {
			t.Error("connect failures not counted as 5xx")
		}
	})
	t.Run("split", func(t *testing.T) {
		cfg := envoyDefaults()
		cfg.SplitExternalLocalOriginErrors = true
		r := newRig(t, cfg, 10)
		r.report(0, 4, 0, true)
		r.report(0, 1, 500, false) // a response: resets the local-origin run, starts a 5xx run
		r.report(0, 4, 0, true)
		if r.mons[0].Ejected() {
			t.Fatal("ejected without 5 consecutive local-origin failures")
		}
		r.report(0, 1, 0, true)
		if !r.mons[0].Ejected() || r.stat("ejections_enforced_consecutive_local_origin_failure") != 1 {
			t.Error("not ejected for 5 consecutive local-origin failures")
		}
		if r.stat("ejections_detected_consecutive_5xx") != 0 {
			t.Error("local-origin failures counted as 5xx with split")
		}
	})
}

func TestEnforcingPercentage(t *testing.T) {
	cfg := envoyDefaults()
	cfg.EnforcingConsecutive5xx = 30
	r := newRig(t, cfg, 10)
	roll := uint32(50)
	r.d.opts.Roll = func() uint32 { return roll }
	r.report(0, 5, 500, false)
	if r.mons[0].Ejected() {
		t.Fatal("ejected on a roll of 50 with enforcing 30")
	}
	if r.stat("ejections_detected_consecutive_5xx") != 1 || r.stat("ejections_enforced_total") != 0 {
		t.Error("a detection must count even when not enforced")
	}
	roll = 29
	r.report(1, 5, 500, false)
	if !r.mons[1].Ejected() {
		t.Fatal("not ejected on a roll of 29 with enforcing 30")
	}
}

func TestSuccessRate(t *testing.T) {
	cfg := envoyDefaults()
	cfg.Consecutive5xx = 1000
	cfg.MaxEjectionPercent = 50
	r := newRig(t, cfg, 6)
	// Five hosts near 99%, one at 50%: far below mean - 1.9 × stdev.
	for i := range 5 {
		r.report(i, 198, 200, false)
		r.report(i, 2, 500, false)
	}
	for range 100 {
		r.report(5, 1, 200, false)
		r.report(5, 1, 500, false)
	}
	r.d.Tick()
	for i, m := range r.mons {
		if m.Ejected() != (i == 5) {
			t.Errorf("host %d ejected=%v", i, m.Ejected())
		}
	}
	if r.stat("ejections_enforced_success_rate") != 1 {
		t.Errorf("ejections_enforced_success_rate = %d", r.stat("ejections_enforced_success_rate"))
	}
	t.Run("too few hosts with volume", func(t *testing.T) {
		r := newRig(t, cfg, 6)
		// Four hosts with volume and one below success_rate_request_volume: four is under
		// success_rate_minimum_hosts, so nobody is judged.
		for i := range 3 {
			r.report(i, 200, 200, false)
		}
		r.report(4, 99, 200, false)
		r.report(5, 200, 500, false)
		r.d.Tick()
		if r.mons[5].Ejected() {
			t.Error("ejected with only four hosts of enough volume")
		}
	})
}

func TestFailurePercentage(t *testing.T) {
	cfg := envoyDefaults()
	cfg.Consecutive5xx = 1000
	cfg.EnforcingSuccessRate = 0
	cfg.EnforcingFailurePercentage = 100
	cfg.FailurePercentageMinimumHosts = 3
	cfg.MaxEjectionPercent = 100
	r := newRig(t, cfg, 4)
	for i := range 3 {
		r.report(i, 60, 200, false)
	}
	for range 30 {
		r.report(3, 1, 500, false)
		r.report(3, 9, 503, false)
		r.report(3, 1, 200, false)
	}
	r.d.Tick()
	if !r.mons[3].Ejected() || r.stat("ejections_enforced_failure_percentage") != 1 {
		t.Error("a host failing 91% not ejected")
	}
	for i := range 3 {
		if r.mons[i].Ejected() {
			t.Errorf("healthy host %d ejected", i)
		}
	}
}

func TestHealthCheckUnejects(t *testing.T) {
	r := newRig(t, envoyDefaults(), 10)
	r.report(0, 5, 500, false)
	r.d.HealthCheckPassed(r.mons[0])
	if r.mons[0].Ejected() || r.flags[0].Load() {
		t.Error("a passing active health check did not return the host")
	}
}

func TestRemoveEjected(t *testing.T) {
	r := newRig(t, envoyDefaults(), 10)
	r.report(0, 5, 500, false)
	r.d.Remove(r.mons[0])
	if got := r.stat("ejections_active"); got != 0 {
		t.Errorf("ejections_active = %d after removing the ejected host", got)
	}
	r.report(0, 5, 500, false) // a late report on a removed host is harmless
}

func TestConcurrentReports(t *testing.T) {
	r := newRig(t, envoyDefaults(), 10)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				status := 200
				if i%3 == 0 {
					status = 503
				}
				r.mons[(g+i)%10].Report(status, i%7 == 0)
			}
		})
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			r.d.Tick()
		}
	}()
	wg.Wait()
}

func TestTimerStops(t *testing.T) {
	cfg := envoyDefaults()
	cfg.Interval = time.Millisecond
	d := New(&cfg, stats.NewStore().Scope("cluster.x"), func() {}, Options{})
	d.Start()
	d.Close()
	select {
	case <-d.done:
	default:
		t.Fatal("timer goroutine still running after Close")
	}
}

func BenchmarkReport(b *testing.B) {
	cfg := envoyDefaults()
	d := New(&cfg, stats.NewStore().Scope("cluster.x"), func() {}, Options{Manual: true})
	m := d.Add(func(bool) {})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Report(200, false)
		}
	})
}
