package cluster

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
)

func testHosts(weights ...uint32) []*Host {
	hs := make([]*Host, len(weights))
	for i, w := range weights {
		hs[i] = &Host{Address: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: w, Healthy: true}
	}
	return hs
}

// settings are a policy's defaults, as decoders produce them.
func settings(p model.LBPolicy) *lbSettings {
	s := newLBSettings(&model.Cluster{LBPolicy: p})
	return &s
}

func counts(b *balancer, n int) map[*Host]int {
	c := map[*Host]int{}
	for i := range n {
		c[b.pick(0, uint64(i)*0x9e3779b97f4a7c15, 0)]++
	}
	return c
}

func TestRoundRobinDistribution(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		picks   int
		exact   bool // a whole number of schedule cycles: counts must be exact
		path    string
	}{
		{name: "equal", weights: []uint32{1, 1, 1, 1}, picks: 4000, exact: true, path: "equal"},
		{name: "1 2 3", weights: []uint32{1, 2, 3}, picks: 6000, exact: true, path: "sched"},
		{name: "gcd reduced", weights: []uint32{100, 200, 300}, picks: 6000, exact: true, path: "sched"},
		{name: "edf schedule", weights: bigWeights(1500, 40), picks: 4 * sumOf(bigWeights(1500, 40)), exact: true, path: "sched"},
		{name: "live edf", weights: []uint32{100001, 200000, 300000}, picks: 60000, exact: false, path: "edf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hosts := testHosts(tc.weights...)
			b := newBalancer(settings(model.LBRoundRobin), hosts)
			switch {
			case tc.path == "equal" && !b.equal,
				tc.path == "sched" && b.sched == nil,
				tc.path == "edf" && b.edf == nil:
				t.Fatalf("balancer did not take the %s path", tc.path)
			}
			got := counts(b, tc.picks)
			var sum float64
			for _, w := range tc.weights {
				sum += float64(w)
			}
			for i, h := range hosts {
				want := float64(tc.picks) * float64(tc.weights[i]) / sum
				if tc.exact && float64(got[h]) != want {
					t.Errorf("host %d (weight %d): %d picks, want exactly %.0f", i, tc.weights[i], got[h], want)
				}
				if !tc.exact && math.Abs(float64(got[h])-want) > math.Max(want*0.01, 1) {
					t.Errorf("host %d (weight %d): %d picks, want %.1f ±1%%", i, tc.weights[i], got[h], want)
				}
			}
		})
	}
}

func sumOf(w []uint32) int {
	n := 0
	for _, x := range w {
		n += int(x)
	}
	return n
}

// bigWeights returns n weights cycling 1..k, enough hosts that the schedule is generated
// with the EDF heap rather than nginx's quadratic loop.
func bigWeights(n, k int) []uint32 {
	w := make([]uint32, n)
	for i := range w {
		w[i] = uint32(i%k + 1)
	}
	return w
}

func TestSmoothWRRInterleaves(t *testing.T) {
	hosts := testHosts(5, 1, 1)
	b := newBalancer(settings(model.LBRoundRobin), hosts)
	name := map[*Host]string{hosts[0]: "a", hosts[1]: "b", hosts[2]: "c"}
	var seq []string
	for range 7 {
		seq = append(seq, name[b.pick(0, 0, 0)])
	}
	// Rotations of nginx's cycle "a a b a c a a": the counter starts at a random place.
	cycle := "aabacaa"
	got := strings.Join(seq, "")
	if !strings.Contains(cycle+cycle, got) {
		t.Errorf("sequence %s is not a rotation of %s", got, cycle)
	}
}

func TestRandomDistribution(t *testing.T) {
	hosts := testHosts(1, 3)
	b := newBalancer(settings(model.LBRandom), hosts)
	got := counts(b, 40000)
	if r := float64(got[hosts[1]]) / float64(got[hosts[0]]); r < 2.7 || r > 3.3 {
		t.Errorf("ratio %v, want about 3 (%d vs %d)", r, got[hosts[1]], got[hosts[0]])
	}
}

func TestLeastRequestPrefersIdleHost(t *testing.T) {
	hosts := testHosts(1, 1, 1)
	hosts[0].active.Store(10)
	hosts[1].active.Store(10)
	b := newBalancer(settings(model.LBLeastRequest), hosts)
	got := counts(b, 3000)
	// The idle host wins whenever it is one of the two choices: 5/9 of picks.
	if got[hosts[2]] < 1500 {
		t.Errorf("idle host got %d of 3000 picks", got[hosts[2]])
	}
}

func TestPickAllocs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		policy  model.LBPolicy
		weights []uint32
	}{
		{name: "rr equal", policy: model.LBRoundRobin, weights: []uint32{1, 1, 1}},
		{name: "rr weighted", policy: model.LBRoundRobin, weights: []uint32{1, 2, 3}},
		{name: "rr edf", policy: model.LBRoundRobin, weights: []uint32{100001, 200000, 300000}},
		{name: "random", policy: model.LBRandom, weights: []uint32{1, 2, 3}},
		{name: "least request", policy: model.LBLeastRequest, weights: []uint32{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Cluster{}
			c.set.Store(buildSet(settings(tc.policy), testHosts(tc.weights...)))
			var rnd uint64
			if n := testing.AllocsPerRun(1000, func() {
				rnd += 0x9e3779b97f4a7c15
				if c.Pick(rnd) == nil {
					t.Fatal("nil host")
				}
			}); n != 0 {
				t.Errorf("Pick allocates %v times", n)
			}
		})
	}
}

func TestPickConcurrent(t *testing.T) {
	hosts := testHosts(1, 2, 3)
	b := newBalancer(settings(model.LBRoundRobin), hosts)
	var mu sync.Mutex
	total := map[*Host]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			local := map[*Host]int{}
			for range 1000 {
				local[b.pick(0, 0, 0)]++
			}
			mu.Lock()
			for h, n := range local {
				total[h] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	// 6000 picks are exactly one thousand cycles, whatever the interleaving.
	for i, h := range hosts {
		if want := 1000 * (i + 1); total[h] != want {
			t.Errorf("host %d: %d picks, want %d", i, total[h], want)
		}
	}
}

func TestPriorities(t *testing.T) {
	p0 := &Host{Address: "10.0.0.1:80", Weight: 1, Priority: 0}
	p1 := &Host{Address: "10.0.0.2:80", Weight: 1, Priority: 1, Healthy: true}
	p2 := &Host{Address: "10.0.0.3:80", Weight: 1, Priority: 2, Healthy: true}
	c := &Cluster{}
	c.set.Store(buildSet(settings(model.LBRoundRobin), []*Host{p0, p1, p2}))
	for range 10 {
		if h := c.Pick(0); h != p1 {
			t.Fatalf("picked %v, want the priority 1 host (priority 0 is unhealthy)", h)
		}
	}
	// With no healthy host anywhere, panic mode balances over all hosts, as Envoy does;
	// with panic mode disabled there is nothing to pick.
	c.set.Store(buildSet(settings(model.LBRoundRobin), []*Host{p0}))
	if h := c.Pick(0); h != p0 {
		t.Errorf("picked %v with no healthy host in panic mode, want the unhealthy host", h)
	}
	noPanic := settings(model.LBRoundRobin)
	noPanic.panicThreshold = 0
	c.set.Store(buildSet(noPanic, []*Host{p0}))
	if h := c.Pick(0); h != nil {
		t.Errorf("picked %v with no healthy host and panic mode off, want nil", h)
	}
	c.set.Store(&endpointSet{})
	if h := c.Pick(0); h != nil {
		t.Errorf("picked %v from an empty set", h)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, tc := range []struct {
		name    string
		policy  model.LBPolicy
		weights []uint32
	}{
		{name: "rr-equal-8", policy: model.LBRoundRobin, weights: []uint32{1, 1, 1, 1, 1, 1, 1, 1}},
		{name: "rr-weighted-8", policy: model.LBRoundRobin, weights: []uint32{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "rr-edf", policy: model.LBRoundRobin, weights: []uint32{100001, 200000, 300000}},
		{name: "random-weighted-8", policy: model.LBRandom, weights: []uint32{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "least-request-8", policy: model.LBLeastRequest, weights: []uint32{1, 1, 1, 1, 1, 1, 1, 1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := &Cluster{}
			c.set.Store(buildSet(settings(tc.policy), testHosts(tc.weights...)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := uint64(1)
				for pb.Next() {
					rnd = rnd*6364136223846793005 + 1442695040888963407
					c.Pick(rnd)
				}
			})
		})
	}
}
