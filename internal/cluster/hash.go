package cluster

import (
	"math"
	"slices"
	"strconv"
)

// normalize returns weights scaled to sum to 1; nil weights mean the hosts' own.
func normalize(hosts []*Host, weights []float64) []float64 {
	out := make([]float64, len(hosts))
	var sum float64
	for i, h := range hosts {
		w := float64(max(h.Weight, 1))
		if weights != nil {
			w = weights[i]
		}
		out[i] = w
		sum += w
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// ring is RING_HASH: Envoy's ketama-style consistent hash ring. Each host owns a number of
// points proportional to its weight, at xxHash64("<address>_<n>"); a request goes to the
// first point at or after its hash. Adding or removing one host only moves the keys of the
// arcs it gains or loses.
type ring struct {
	hashes []uint64 // sorted
	hosts  []*Host  // hosts[i] owns hashes[i]
}

func newRing(hosts []*Host, weights []float64, minSize, maxSize uint64) *ring {
	w := normalize(hosts, weights)
	minW := slices.Min(w)
	// As Envoy: the smallest host gets at least one point per ring slot it would own in a
	// ring of minSize, and the ring never exceeds maxSize.
	scale := math.Min(math.Ceil(minW*float64(minSize))/minW, float64(maxSize))
	size := uint64(math.Ceil(scale))
	type point struct {
		hash uint64
		host *Host
	}
	pts := make([]point, 0, size+uint64(len(hosts)))
	var target, cur float64
	var key []byte
	for i, h := range hosts {
		target += scale * w[i]
		key = append(append(key[:0], h.Address...), '_')
		base := len(key)
		for n := 0; cur < target; n++ {
			key = strconv.AppendInt(key[:base], int64(n), 10)
			pts = append(pts, point{xxhash64(key, 0), h})
			cur++
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	r := &ring{hashes: make([]uint64, len(pts)), hosts: make([]*Host, len(pts))}
	for i, p := range pts {
		r.hashes[i], r.hosts[i] = p.hash, p.host
	}
	return r
}

func (r *ring) pick(key, _ uint64, attempt uint64) *Host {
	n := len(r.hashes)
	if n == 0 {
		return nil
	}
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.hashes[mid] < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	// Past the last point wraps to the first. A retry that must avoid the host walks on
	// around the ring, as Envoy does; it may land on the same host at another point.
	return r.hosts[(uint64(lo)+attempt)%uint64(n)]
}

// maglev is MAGLEV: Google's Maglev consistent hashing (NSDI 2016) as Envoy builds it. Each
// host fills a prime-sized table by walking its own permutation (offset and skip from
// xxHash64 of its address), heavier hosts taking turns more often; lookups are one modulo.
type maglev struct {
	table []*Host
}

func newMaglev(hosts []*Host, weights []float64, size uint64) *maglev {
	w := normalize(hosts, weights)
	maxW := slices.Max(w)
	type entry struct {
		offset, skip, next uint64
		target             float64
	}
	es := make([]entry, len(hosts))
	for i, h := range hosts {
		addr := []byte(h.Address)
		es[i] = entry{offset: xxhash64(addr, 0) % size, skip: xxhash64(addr, 1)%(size-1) + 1}
	}
	m := &maglev{table: make([]*Host, size)}
	filled := uint64(0)
	for iter := uint64(1); filled < size; iter++ {
		for i := range es {
			if filled == size {
				break
			}
			e := &es[i]
			// A host with the largest weight takes a slot every round; one with a third of it
			// every third round.
			if float64(iter)*w[i] < e.target {
				continue
			}
			e.target += maxW
			c := (e.offset + e.skip*e.next) % size
			for m.table[c] != nil {
				e.next++
				c = (e.offset + e.skip*e.next) % size
			}
			m.table[c] = hosts[i]
			e.next++
			filled++
		}
	}
	return m
}

func (m *maglev) pick(key, _ uint64, attempt uint64) *Host {
	if attempt > 0 {
		// Envoy's retry perturbation: flip many bits so successive attempts spread out.
		key ^= ^uint64(0) - attempt + 1
	}
	return m.table[key%uint64(len(m.table))]
}
