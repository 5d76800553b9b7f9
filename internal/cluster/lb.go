package cluster

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// maxSchedule bounds the precomputed weighted round-robin sequence (its length is the sum
// of the hosts' weights divided by their greatest common divisor). Larger sets fall back to
// an earliest-deadline-first scheduler behind a mutex.
const maxSchedule = 1 << 16

// smoothWRRCost bounds hosts × schedule length for nginx's O(n) per step smooth weighted
// round robin; beyond it the schedule is generated with an EDF heap instead, O(log n) per step.
const smoothWRRCost = 1 << 20

// Envoy's load-balancer defaults for zero model values that are not meaningful.
const (
	defaultOverprovisioning  = 140
	defaultPanicThreshold    = 50
	defaultActiveRequestBias = 1.0
	defaultChoiceCount       = 2
	defaultMinRingSize       = 1024
	defaultMaxRingSize       = 8 << 20
	defaultMaglevTableSize   = 65537
)

// lbSettings is a cluster's load-balancing configuration with defaults applied.
type lbSettings struct {
	policy           model.LBPolicy
	panicThreshold   float64 // percent; 0 disables panic mode
	overprovisioning float64 // factor: 1.4 for Envoy's 140
	localityWeighted bool
	choiceCount      int
	bias             float64
	minRing, maxRing uint64
	maglevSize       uint64
}

func newLBSettings(m *model.Cluster) lbSettings {
	l := &m.LB
	s := lbSettings{
		policy:           m.LBPolicy,
		panicThreshold:   defaultPanicThreshold,
		overprovisioning: float64(cmpOr(l.OverprovisioningFactor, defaultOverprovisioning)) / 100,
		localityWeighted: l.LocalityWeighted,
		choiceCount:      int(cmpOr(l.ChoiceCount, defaultChoiceCount)),
		bias:             defaultActiveRequestBias,
		minRing:          cmpOr(l.MinRingSize, defaultMinRingSize),
		maxRing:          cmpOr(l.MaxRingSize, defaultMaxRingSize),
		maglevSize:       cmpOr(l.MaglevTableSize, defaultMaglevTableSize),
	}
	if l.HealthyPanicThreshold != nil {
		s.panicThreshold = *l.HealthyPanicThreshold
	}
	if l.ActiveRequestBias != nil {
		s.bias = *l.ActiveRequestBias
	}
	s.minRing = min(s.minRing, s.maxRing)
	return s
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (s *lbSettings) hashed() bool { return s.policy == model.LBRingHash || s.policy == model.LBMaglev }

// picker chooses among one fixed group of hosts. Pickers are immutable once built except
// for their counters, so picks need no lock.
type picker interface {
	// pick returns a host. key is the request hash for hash policies (or a random number
	// when the request has none); rnd is a random number; attempt counts the picks made for
	// this request so far, so hash policies can move off a rejected host.
	pick(key, rnd uint64, attempt uint64) *Host
}

func newPicker(s *lbSettings, hosts []*Host, weights []float64) picker {
	switch s.policy {
	case model.LBRingHash:
		return newRing(hosts, weights, s.minRing, s.maxRing)
	case model.LBMaglev:
		return newMaglev(hosts, weights, s.maglevSize)
	}
	return newBalancer(s, hosts)
}

// balancer is the picker of the round-robin, random and least-request policies.
type balancer struct {
	policy model.LBPolicy
	hosts  []*Host
	equal  bool     // all weights equal: plain rotation, no schedule
	sched  []uint16 // indexes into hosts, in smooth weighted round-robin order
	cum    []uint64 // cumulative weights, for weighted random
	next   atomic.Uint64

	choices int     // least request: hosts compared per pick
	bias    float64 // least request: exponent of (active+1) dividing the weight

	edfMu sync.Mutex
	edf   *edfQueue // only when the schedule would be too long
}

func newBalancer(s *lbSettings, hosts []*Host) *balancer {
	b := &balancer{policy: s.policy, hosts: hosts, equal: true, choices: max(s.choiceCount, 1), bias: s.bias}
	// Start each set at a random place so replicas and fresh sets don't all send their
	// first requests to the same host.
	b.next.Store(rand.Uint64())
	w := make([]uint64, len(hosts))
	var g uint64
	for i, h := range hosts {
		w[i] = uint64(max(h.Weight, 1))
		g = gcd(g, w[i])
		if w[i] != w[0] {
			b.equal = false
		}
	}
	if b.equal {
		return b
	}
	var sum uint64
	b.cum = make([]uint64, len(hosts))
	for i := range w {
		w[i] /= g
		sum += w[i]
		b.cum[i] = sum
	}
	if s.policy != model.LBRoundRobin {
		return b
	}
	switch {
	case sum > maxSchedule || len(hosts) > 1<<16:
		b.edf = newEDF(w)
	case sum*uint64(len(hosts)) <= smoothWRRCost:
		b.sched = smoothWRR(w, int(sum))
	default:
		q := newEDF(w)
		b.sched = make([]uint16, sum)
		for i := range b.sched {
			b.sched[i] = uint16(q.pick())
		}
	}
	return b
}

func (b *balancer) pick(_, rnd uint64, _ uint64) *Host {
	n := uint64(len(b.hosts))
	if n == 1 {
		return b.hosts[0]
	}
	switch b.policy {
	case model.LBRandom:
		return b.hosts[b.weightedIndex(rnd)]
	case model.LBLeastRequest:
		if b.equal {
			return b.leastOfChoices(rnd)
		}
		return b.leastWeighted(rnd)
	}
	i := b.next.Add(1)
	switch {
	case b.equal:
		return b.hosts[i%n]
	case b.sched != nil:
		return b.hosts[b.sched[i%uint64(len(b.sched))]]
	}
	b.edfMu.Lock()
	h := b.hosts[b.edf.pick()]
	b.edfMu.Unlock()
	return h
}

// leastOfChoices is Envoy's least request for equal weights: of choice_count random hosts
// (two by default, "the power of two choices"), the one with the fewest active requests.
func (b *balancer) leastOfChoices(rnd uint64) *Host {
	best := b.hosts[rnd%uint64(len(b.hosts))]
	for range b.choices - 1 {
		rnd = mix(rnd)
		if h := b.hosts[rnd%uint64(len(b.hosts))]; h.active.Load() < best.active.Load() {
			best = h
		}
	}
	return best
}

// leastSteps is the length of the Markov chain leastWeighted runs.
const leastSteps = 10

// leastWeighted is Envoy's least request for unequal weights: each host is chosen with
// probability proportional to weight / (active+1)^bias. Envoy keeps an EDF schedule of
// those weights per worker thread; here a short independence Metropolis–Hastings chain
// reaches the same distribution without a lock or a pass over all hosts: candidates are
// drawn in proportion to weight, and the chain moves from x to candidate y with
// probability min(1, ((active_x+1)/(active_y+1))^bias). Only ratios of loads matter, so a
// uniformly busy cluster balances as well as an idle one.
func (b *balancer) leastWeighted(rnd uint64) *Host {
	x := b.hosts[b.weightedIndex(rnd)]
	if b.bias == 0 {
		return x
	}
	ax := float64(max(x.active.Load(), 0)) + 1
	for range leastSteps {
		rnd = mix(rnd)
		y := b.hosts[b.weightedIndex(rnd)]
		ay := float64(max(y.active.Load(), 0)) + 1
		if ay <= ax {
			x, ax = y, ay
			continue
		}
		ratio := ax / ay
		if b.bias != 1 {
			ratio = math.Pow(ratio, b.bias)
		}
		rnd = mix(rnd)
		// rnd's top 53 bits as a uniform number in [0, 1).
		if float64(rnd>>11)*(1.0/(1<<53)) < ratio {
			x, ax = y, ay
		}
	}
	return x
}

// mix derives a second random number from rnd (splitmix64's finalizer), independent of it
// modulo small host counts, unlike a rotation or a shift.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// weightedIndex maps rnd to a host index with probability proportional to weight.
func (b *balancer) weightedIndex(rnd uint64) int {
	if b.equal {
		return int(rnd % uint64(len(b.hosts)))
	}
	return searchCum(b.cum, rnd%b.cum[len(b.cum)-1])
}

// searchCum returns the first index whose cumulative value exceeds r.
func searchCum(cum []uint64, r uint64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] > r {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// smoothWRR returns nginx's smooth weighted round-robin sequence for one full cycle: each
// step every host gains its weight, the one with the most is picked and loses the total.
// Picks of a heavy host are spread out rather than bunched (weights 5,1,1 give
// a a b a c a a, not a a a a a b c).
func smoothWRR(w []uint64, total int) []uint16 {
	cur := make([]int64, len(w))
	out := make([]uint16, total)
	for step := range out {
		best := 0
		for i := range w {
			cur[i] += int64(w[i])
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= int64(total)
		out[step] = uint16(best)
	}
	return out
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// edfQueue is an earliest-deadline-first scheduler: host i is due every 1/w[i]; the host
// with the earliest deadline is picked and its deadline advanced. Ties go to the lower
// index, so the order is deterministic.
type edfQueue struct {
	w    []uint64
	heap []edfEntry
}

type edfEntry struct {
	deadline float64
	host     int
}

func newEDF(w []uint64) *edfQueue {
	q := &edfQueue{w: w, heap: make([]edfEntry, len(w))}
	for i := range w {
		q.heap[i] = edfEntry{deadline: 1 / float64(w[i]), host: i}
	}
	for i := len(q.heap)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
	return q
}

func (q *edfQueue) pick() int {
	top := &q.heap[0]
	i := top.host
	top.deadline += 1 / float64(q.w[i])
	q.down(0)
	return i
}

func (q *edfQueue) less(a, b int) bool {
	x, y := q.heap[a], q.heap[b]
	return x.deadline < y.deadline || (x.deadline == y.deadline && x.host < y.host)
}

func (q *edfQueue) down(i int) {
	n := len(q.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.heap[i], q.heap[m] = q.heap[m], q.heap[i]
		i = m
	}
}
