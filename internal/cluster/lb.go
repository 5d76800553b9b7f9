package cluster

import (
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

// balancer picks among one priority level's healthy hosts. It is immutable once built
// except for its counters, so picks need no lock.
type balancer struct {
	policy model.LBPolicy
	hosts  []*Host
	equal  bool     // all weights equal: plain rotation, no schedule
	sched  []uint16 // indexes into hosts, in smooth weighted round-robin order
	cum    []uint64 // cumulative weights, for weighted random
	next   atomic.Uint64

	edfMu sync.Mutex
	edf   *edfQueue // only when the schedule would be too long
}

func newBalancer(policy model.LBPolicy, hosts []*Host) *balancer {
	b := &balancer{policy: policy, hosts: hosts, equal: true}
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

// pick chooses a host. rnd is a caller-supplied random number, used by the random and
// least-request policies; round robin ignores it.
func (b *balancer) pick(rnd uint64) *Host {
	n := uint64(len(b.hosts))
	if n == 1 {
		return b.hosts[0]
	}
	switch b.policy {
	case model.LBRandom:
		return b.hosts[b.weightedIndex(rnd)]
	case model.LBLeastRequest:
		// Power of two choices (Envoy's default choice_count): of two random hosts, the
		// one with fewer active requests per unit of weight.
		x := b.hosts[b.weightedIndex(rnd)]
		y := b.hosts[b.weightedIndex(mix(rnd))]
		if y.active.Load()*int64(x.Weight) < x.active.Load()*int64(y.Weight) {
			return y
		}
		return x
	}
	// Round robin; ring hash and Maglev use it until consistent hashing is added.
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
	r := rnd % b.cum[len(b.cum)-1]
	lo, hi := 0, len(b.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if b.cum[mid] > r {
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
