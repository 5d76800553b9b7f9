package cluster

import (
	"fmt"
	"math"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// chiSquareCritical approximates the chi-square critical value for df degrees of freedom at
// p = 0.001 (Wilson–Hilferty), so a correct balancer fails a test about once in a thousand
// seeds; the seeds here are fixed, so the tests are deterministic.
func chiSquareCritical(df int) float64 {
	const z = 3.09
	d := float64(df)
	x := 1 - 2/(9*d) + z*math.Sqrt(2/(9*d))
	return d * x * x * x
}

// chiSquare compares counts with shares (summing to 1) over total picks.
func chiSquare(t *testing.T, hosts []*Host, got map[*Host]int, shares []float64, total int) {
	t.Helper()
	var stat float64
	for i, h := range hosts {
		want := shares[i] * float64(total)
		d := float64(got[h]) - want
		stat += d * d / want
	}
	if crit := chiSquareCritical(len(hosts) - 1); stat > crit {
		t.Errorf("chi-square %.1f > %.1f (p=0.001): counts %v, shares %v", stat, crit, countsOf(hosts, got), shares)
	}
}

func countsOf(hosts []*Host, got map[*Host]int) []int {
	out := make([]int, len(hosts))
	for i, h := range hosts {
		out[i] = got[h]
	}
	return out
}

func weightShares(ws ...uint32) []float64 {
	var sum float64
	for _, w := range ws {
		sum += float64(w)
	}
	out := make([]float64, len(ws))
	for i, w := range ws {
		out[i] = float64(w) / sum
	}
	return out
}

func setCluster(s *lbSettings, hosts []*Host) *Cluster {
	c := &Cluster{}
	c.set.Store(buildSet(s, hosts))
	return c
}

// chooseN picks n times with a fixed random sequence; hashed requests use a hash of i.
func chooseN(c *Cluster, n int, hashed bool) map[*Host]int {
	got := map[*Host]int{}
	rnd := uint64(42)
	for i := range n {
		rnd = rnd*6364136223846793005 + 1442695040888963407
		lc := LBContext{Rnd: rnd}
		if hashed {
			lc.Hash, lc.HasHash = mix(uint64(i)+1), true
		}
		got[c.Choose(&lc)]++
	}
	return got
}

func TestPolicyDistribution(t *testing.T) {
	const n = 60000
	for _, tc := range []struct {
		name    string
		policy  model.LBPolicy
		weights []uint32
		minRing uint64
		// tolerance > 0 checks each share within that relative error instead of chi-square:
		// a ring's arcs are random, so its shares are only close to the weights.
		tolerance float64
	}{
		{name: "round robin", policy: model.LBRoundRobin, weights: []uint32{1, 2, 3, 4}},
		{name: "random equal", policy: model.LBRandom, weights: []uint32{1, 1, 1, 1, 1}},
		{name: "random weighted", policy: model.LBRandom, weights: []uint32{1, 2, 3, 4}},
		{name: "least request equal idle", policy: model.LBLeastRequest, weights: []uint32{1, 1, 1, 1}},
		{name: "least request weighted idle", policy: model.LBLeastRequest, weights: []uint32{1, 2, 3, 4}},
		{name: "ring hash equal", policy: model.LBRingHash, weights: []uint32{1, 1, 1, 1}, minRing: 1 << 16, tolerance: 0.08},
		{name: "ring hash weighted", policy: model.LBRingHash, weights: []uint32{1, 2, 3, 4}, minRing: 1 << 16, tolerance: 0.08},
		{name: "maglev equal", policy: model.LBMaglev, weights: []uint32{1, 1, 1, 1}},
		{name: "maglev weighted", policy: model.LBMaglev, weights: []uint32{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(tc.policy)
			if tc.minRing > 0 {
				s.minRing = tc.minRing
			}
			hosts := testHosts(tc.weights...)
			c := setCluster(s, hosts)
			got := chooseN(c, n, s.hashed())
			shares := weightShares(tc.weights...)
			if tc.tolerance == 0 {
				chiSquare(t, hosts, got, shares, n)
				return
			}
			for i, h := range hosts {
				if share := float64(got[h]) / n; math.Abs(share-shares[i]) > tc.tolerance*shares[i]+0.005 {
					t.Errorf("host %d: share %.3f, want %.3f ± %.0f%%", i, share, shares[i], 100*tc.tolerance)
				}
			}
		})
	}
}

func TestLeastRequestPrefersIdleHosts(t *testing.T) {
	const n = 40000
	for _, tc := range []struct {
		name    string
		weights []uint32
		busy    int   // the host given active requests
		active  int64 // how many
		tune    func(s *lbSettings)
		want    []float64 // each host's share of the picks
	}{
		// The busy host wins only when both draws land on it: 1/4 of picks.
		{name: "two choices", weights: []uint32{1, 1}, busy: 0, active: 5, want: []float64{0.25, 0.75}},
		{name: "choice count 4", weights: []uint32{1, 1}, busy: 0, active: 5,
			tune: func(s *lbSettings) { s.choiceCount = 4 }, want: []float64{1.0 / 16, 15.0 / 16}},
		// weight / (active+1): 1/1 and 3/3, so both hosts are equally attractive.
		{name: "weighted bias 1", weights: []uint32{1, 3}, busy: 1, active: 2, want: []float64{0.5, 0.5}},
		{name: "weighted bias 0 ignores load", weights: []uint32{1, 3}, busy: 1, active: 100,
			tune: func(s *lbSettings) { s.bias = 0 }, want: []float64{0.25, 0.75}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := testHosts(tc.weights...)
			hosts[tc.busy].active.Store(tc.active)
			s := settings(model.LBLeastRequest)
			if tc.tune != nil {
				tc.tune(s)
			}
			got := chooseN(setCluster(s, hosts), n, false)
			chiSquare(t, hosts, got, tc.want, n)
		})
	}
	t.Run("weighted bias 2", func(t *testing.T) {
		// 4/(1+1)^2 = 1 and 1/1: equal.
		hosts := testHosts(1, 4)
		hosts[1].active.Store(1)
		s := settings(model.LBLeastRequest)
		s.bias = 2
		got := chooseN(setCluster(s, hosts), n, false)
		// The chain starts from a draw by weight alone (1/5, 4/5) and is short, so a trace of
		// that start remains: within a percent.
		near(t, "light host", float64(got[hosts[0]])/n, 0.5)
	})
}

// keyOwners maps keys to hosts by address, for comparing two sets' choices.
func keyOwners(c *Cluster, keys int) []string {
	out := make([]string, keys)
	for i := range out {
		out[i] = c.Choose(&LBContext{Hash: mix(uint64(i) + 7), HasHash: true}).Address
	}
	return out
}

// TestHashAffinity adds one host to N and checks that about 1/(N+1) of the keys move, and
// for the ring that every moved key moved to the new host.
func TestHashAffinity(t *testing.T) {
	const keys = 100000
	for _, tc := range []struct {
		name   string
		policy model.LBPolicy
		n      int
		// maxMoved is the bound on the moved share, as a multiple of 1/(N+1).
		maxMoved  float64
		onlyToNew bool
	}{
		// Envoy sizes the ring to about minimum_ring_size points whatever the host count, so
		// going from 10 to 11 hosts takes each old host from 103 points to 94, and keys of
		// the dropped points move between old hosts too. At 50 → 51 the count stays 21.
		{name: "ring hash 10", policy: model.LBRingHash, n: 10, maxMoved: 2},
		{name: "ring hash 50", policy: model.LBRingHash, n: 50, maxMoved: 1.3, onlyToNew: true},
		{name: "maglev 10", policy: model.LBMaglev, n: 10, maxMoved: 1.6},
		{name: "maglev 50", policy: model.LBMaglev, n: 50, maxMoved: 1.6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := settings(tc.policy)
			ws := make([]uint32, tc.n+1)
			for i := range ws {
				ws[i] = 1
			}
			all := testHosts(ws...)
			before := keyOwners(setCluster(s, all[:tc.n]), keys)
			after := keyOwners(setCluster(s, all), keys)
			moved, toNew := 0, 0
			for i := range before {
				if before[i] != after[i] {
					moved++
					if after[i] == all[tc.n].Address {
						toNew++
					}
				}
			}
			ideal := 1 / float64(tc.n+1)
			share := float64(moved) / keys
			t.Logf("moved %.4f of keys (ideal %.4f, ratio %.2f); %d of %d to the new host", share, ideal, share/ideal, toNew, moved)
			if share < 0.7*ideal || share > tc.maxMoved*ideal {
				t.Errorf("moved %.4f of keys, want within [%.4f, %.4f]", share, 0.7*ideal, tc.maxMoved*ideal)
			}
			if tc.onlyToNew && toNew != moved {
				t.Errorf("%d keys moved between old hosts", moved-toNew)
			}
		})
	}
}

func TestHashWithoutHashIsRandom(t *testing.T) {
	const n = 40000
	hosts := testHosts(1, 1, 1, 1)
	got := chooseN(setCluster(settings(model.LBMaglev), hosts), n, false)
	chiSquare(t, hosts, got, weightShares(1, 1, 1, 1), n)
}

func TestHashIsSticky(t *testing.T) {
	for _, p := range []model.LBPolicy{model.LBRingHash, model.LBMaglev} {
		c := setCluster(settings(p), testHosts(1, 1, 1, 1, 1))
		for k := range uint64(200) {
			first := c.Choose(&LBContext{Hash: k, HasHash: true, Rnd: 1})
			for r := range uint64(5) {
				if h := c.Choose(&LBContext{Hash: k, HasHash: true, Rnd: r * 977}); h != first {
					t.Fatalf("policy %d: key %d went to %s then %s", p, k, first.Address, h.Address)
				}
			}
		}
	}
}

func TestMaglevTableWeights(t *testing.T) {
	hosts := testHosts(1, 2, 3)
	m := newMaglev(hosts, nil, 65537)
	got := map[*Host]int{}
	for _, h := range m.table {
		if h == nil {
			t.Fatal("table has an empty slot")
		}
		got[h]++
	}
	for i, h := range hosts {
		want := 65537 * float64(i+1) / 6
		if math.Abs(float64(got[h])-want) > 2 {
			t.Errorf("host %d owns %d slots, want %.0f", i, got[h], want)
		}
	}
}

func TestRingSize(t *testing.T) {
	for _, tc := range []struct {
		name             string
		weights          []uint32
		minRing, maxRing uint64
		want             int
	}{
		{name: "equal", weights: []uint32{1, 1, 1}, minRing: 1024, maxRing: 8 << 20, want: 1026},
		{name: "weighted", weights: []uint32{1, 3}, minRing: 1024, maxRing: 8 << 20, want: 1024},
		{name: "uneven", weights: []uint32{1, 1000}, minRing: 1024, maxRing: 8 << 20, want: 2002},
		{name: "capped", weights: []uint32{1, 10000}, minRing: 1024, maxRing: 4096, want: 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(testHosts(tc.weights...), nil, tc.minRing, tc.maxRing)
			if len(r.hashes) != tc.want {
				t.Errorf("ring has %d points, want %d", len(r.hashes), tc.want)
			}
		})
	}
}

func hostsAt(priority uint32, healthy, unhealthy int, loc string, locWeight uint32) []*Host {
	var out []*Host
	for i := range healthy + unhealthy {
		out = append(out, &Host{
			Address: fmt.Sprintf("10.%d.%s.%d:80", priority, loc, i), Weight: 1, Priority: priority,
			Healthy: i < healthy, Locality: Locality{Zone: loc}, LocalityWeight: locWeight,
		})
	}
	return out
}

func sharesBy[K comparable](got map[*Host]int, n int, key func(*Host) K) map[K]float64 {
	out := map[K]float64{}
	for h, c := range got {
		out[key(h)] += float64(c) / float64(n)
	}
	return out
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 0.015 {
		t.Errorf("%s: share %.3f, want %.3f", what, got, want)
	}
}

func TestPriorityLoad(t *testing.T) {
	const n = 50000
	prio := func(h *Host) uint32 { return h.Priority }
	t.Run("healthy P0 takes everything", func(t *testing.T) {
		hosts := append(hostsAt(0, 4, 0, "a", 1), hostsAt(1, 4, 0, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBRoundRobin), hosts), n, false)
		near(t, "P0", sharesBy(got, n, prio)[0], 1)
	})
	t.Run("overprovisioned P0 keeps everything", func(t *testing.T) {
		// 8 of 10 healthy × 1.4 ≥ 100%.
		hosts := append(hostsAt(0, 8, 2, "a", 1), hostsAt(1, 4, 0, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBRoundRobin), hosts), n, false)
		near(t, "P0", sharesBy(got, n, prio)[0], 1)
	})
	t.Run("degraded P0 spills to P1", func(t *testing.T) {
		// 5 of 10 healthy × 1.4 = 70%; P1 takes the other 30%.
		hosts := append(hostsAt(0, 5, 5, "a", 1), hostsAt(1, 4, 0, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBRandom), hosts), n, false)
		sh := sharesBy(got, n, prio)
		near(t, "P0", sh[0], 0.70)
		near(t, "P1", sh[1], 0.30)
		for h := range got {
			if !h.Healthy {
				t.Errorf("unhealthy host %s picked outside panic mode", h.Address)
			}
		}
	})
	t.Run("panic in P0", func(t *testing.T) {
		// 4 of 10 healthy: 56% of the load, and under the 50% panic threshold, so all ten
		// P0 hosts share it.
		hosts := append(hostsAt(0, 4, 6, "a", 1), hostsAt(1, 4, 0, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBRandom), hosts), n, false)
		sh := sharesBy(got, n, prio)
		near(t, "P0", sh[0], 0.56)
		near(t, "P1", sh[1], 0.44)
		near(t, "P0 unhealthy", sharesBy(got, n, func(h *Host) bool { return h.Priority == 0 && !h.Healthy })[true], 0.56*0.6)
	})
	t.Run("total panic spreads by size", func(t *testing.T) {
		hosts := append(hostsAt(0, 0, 2, "a", 1), hostsAt(1, 0, 6, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBRandom), hosts), n, false)
		sh := sharesBy(got, n, prio)
		near(t, "P0", sh[0], 0.25)
		near(t, "P1", sh[1], 0.75)
	})
	t.Run("no panic threshold", func(t *testing.T) {
		s := settings(model.LBRandom)
		s.panicThreshold = 0
		hosts := append(hostsAt(0, 1, 9, "a", 1), hostsAt(1, 0, 6, "a", 1)...)
		got := chooseN(setCluster(s, hosts), n, false)
		// Only the one healthy host; 14% health normalized to 100%.
		if len(got) != 1 || got[hosts[0]] != n {
			t.Errorf("picks %v, want all on the one healthy host", countsOf(hosts, got))
		}
	})
	t.Run("hash picks the priority", func(t *testing.T) {
		hosts := append(hostsAt(0, 5, 5, "a", 1), hostsAt(1, 4, 0, "a", 1)...)
		got := chooseN(setCluster(settings(model.LBMaglev), hosts), n, true)
		near(t, "P0", sharesBy(got, n, prio)[0], 0.70)
	})
}

func TestLocalityWeighted(t *testing.T) {
	const n = 50000
	zone := func(h *Host) string { return h.Locality.Zone }
	for _, policy := range []model.LBPolicy{model.LBRoundRobin, model.LBRandom, model.LBLeastRequest, model.LBRingHash, model.LBMaglev} {
		t.Run(fmt.Sprint("policy ", policy), func(t *testing.T) {
			s := settings(policy)
			s.localityWeighted = true
			if policy == model.LBRingHash {
				s.minRing = 1 << 16
			}
			t.Run("by weight", func(t *testing.T) {
				hosts := append(hostsAt(0, 2, 0, "a", 1), hostsAt(0, 2, 0, "b", 3)...)
				got := chooseN(setCluster(s, hosts), n, s.hashed())
				sh := sharesBy(got, n, zone)
				near(t, "a", sh["a"], 0.25)
				near(t, "b", sh["b"], 0.75)
			})
			if s.hashed() {
				return
			}
			t.Run("by weight × availability", func(t *testing.T) {
				// b: 1 of 2 healthy × 1.4 = 0.7 of its weight 3; a: 1 × 1.
				hosts := append(hostsAt(0, 2, 0, "a", 1), hostsAt(0, 1, 1, "b", 3)...)
				got := chooseN(setCluster(s, hosts), n, false)
				sh := sharesBy(got, n, zone)
				near(t, "a", sh["a"], 1/3.1)
				near(t, "b", sh["b"], 2.1/3.1)
				if got[hosts[3]] != 0 {
					t.Errorf("unhealthy host picked %d times", got[hosts[3]])
				}
			})
		})
	}
}

func TestChooseExclude(t *testing.T) {
	for _, p := range []model.LBPolicy{model.LBRoundRobin, model.LBRandom, model.LBLeastRequest, model.LBRingHash, model.LBMaglev} {
		t.Run(fmt.Sprint("policy ", p), func(t *testing.T) {
			hosts := testHosts(1, 1, 1)
			c := setCluster(settings(p), hosts)
			avoid := func(h *Host) bool { return h == hosts[0] }
			hit := 0
			for i := range uint64(3000) {
				lc := LBContext{Rnd: mix(i), Hash: mix(i + 99), HasHash: true, Exclude: avoid, MaxAttempts: 5}
				if c.Choose(&lc) == hosts[0] {
					hit++
				}
			}
			// Five tries all landing on the avoided host: (1/3)^5 for random draws.
			if hit > 60 {
				t.Errorf("excluded host chosen %d of 3000 times", hit)
			}
			// One attempt cannot avoid it.
			lc := LBContext{Exclude: func(*Host) bool { return true }, MaxAttempts: 1}
			if c.Choose(&lc) == nil {
				t.Error("Choose returned nil when every host is excluded, want the last pick")
			}
		})
	}
}

func TestChooseAllocs(t *testing.T) {
	for _, p := range []model.LBPolicy{model.LBRoundRobin, model.LBRandom, model.LBLeastRequest, model.LBRingHash, model.LBMaglev} {
		for _, weighted := range []bool{false, true} {
			for _, locality := range []bool{false, true} {
				name := fmt.Sprintf("policy %d weighted %v locality %v", p, weighted, locality)
				t.Run(name, func(t *testing.T) {
					s := settings(p)
					s.localityWeighted = locality
					hosts := append(hostsAt(0, 3, 1, "a", 1), hostsAt(0, 3, 0, "b", 2)...)
					hosts = append(hosts, hostsAt(1, 2, 0, "a", 1)...)
					if weighted {
						for i, h := range hosts {
							h.Weight = uint32(i%3 + 1)
						}
					}
					hosts[0].active.Store(3)
					c := setCluster(s, hosts)
					avoid := func(h *Host) bool { return h == hosts[1] }
					lc := LBContext{Exclude: avoid, MaxAttempts: 3}
					var i uint64
					if n := testing.AllocsPerRun(2000, func() {
						i++
						lc.Rnd, lc.Hash, lc.HasHash = mix(i), mix(i+1), i%2 == 0
						if c.Choose(&lc) == nil {
							t.Fatal("nil host")
						}
					}); n != 0 {
						t.Errorf("Choose allocates %v times", n)
					}
				})
			}
		}
	}
}

func BenchmarkChoose(b *testing.B) {
	for _, p := range []model.LBPolicy{model.LBRoundRobin, model.LBRandom, model.LBLeastRequest, model.LBRingHash, model.LBMaglev} {
		b.Run(fmt.Sprint("policy-", p), func(b *testing.B) {
			c := setCluster(settings(p), testHosts(1, 2, 3, 4, 5, 6, 7, 8))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rnd := uint64(1)
				for pb.Next() {
					rnd = rnd*6364136223846793005 + 1442695040888963407
					c.Choose(&LBContext{Rnd: rnd, Hash: rnd >> 7, HasHash: true})
				}
			})
		})
	}
}
