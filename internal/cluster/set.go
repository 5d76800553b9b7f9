package cluster

import "slices"

// endpointSet is a cluster's hosts at one moment, grouped by priority, with everything a
// pick needs precomputed: the load each priority takes, which priorities are in panic, and
// the pickers. Any change of membership or health builds a new set.
type endpointSet struct {
	hosts      []*Host // all hosts, ordered by priority
	priorities []priorityLevel
	// cumLoad[i] is the percentage of requests (0-100) going to priorities 0..i.
	cumLoad []uint32
	hashed  bool // the policy is ring hash or Maglev: the hash picks the priority too
}

type priorityLevel struct {
	priority uint32
	hosts    []*Host
	healthy  []*Host
	// panic: too few healthy hosts; this level balances over all of them, ignoring health.
	panic bool
	pick  picker // over healthy hosts, or all when panic; nil when the level gets no load

	// With locality-weighted balancing (not for hash policies, whose weights include the
	// locality's): a locality is chosen first, with probability cumLoc, then a host in it.
	locCum  []uint64
	locPick []picker
}

// locWeightScale turns effective locality weights (fractions) into integers for a
// cumulative table.
const locWeightScale = 1 << 20

type localityGroup struct {
	weight  uint32
	hosts   []*Host
	healthy []*Host
}

// buildSet groups hosts (sorted by priority) into levels and computes Envoy's priority
// load: each level's health is its share of healthy hosts times the overprovisioning factor,
// capped at 100%; levels take load in order until 100% is handed out, normalized when the
// total health is below 100%. A level whose healthy share is under the panic threshold
// balances over all its hosts. When no level has a healthy host and panic mode is on, load
// is spread over the levels by their sizes.
func buildSet(s *lbSettings, hosts []*Host) *endpointSet {
	set := &endpointSet{hosts: hosts, hashed: s.hashed()}
	for i := 0; i < len(hosts); {
		j := i
		for j < len(hosts) && hosts[j].Priority == hosts[i].Priority {
			j++
		}
		lvl := priorityLevel{priority: hosts[i].Priority, hosts: hosts[i:j:j]}
		for _, h := range lvl.hosts {
			if h.usable() {
				lvl.healthy = append(lvl.healthy, h)
			}
		}
		set.priorities = append(set.priorities, lvl)
		i = j
	}
	n := len(set.priorities)
	if n == 0 {
		return set
	}
	groups := make([][]localityGroup, n)
	health := make([]float64, n)
	var totalHealth float64
	for i := range set.priorities {
		lvl := &set.priorities[i]
		groups[i] = groupLocalities(lvl.hosts)
		if s.localityWeighted {
			var sumW, effW float64
			for _, g := range groups[i] {
				sumW += float64(g.weight)
				effW += float64(g.weight) * localityAvailability(g, s.overprovisioning)
			}
			if sumW > 0 {
				health[i] = min(100, 100*effW/sumW)
			}
		} else {
			health[i] = min(100, 100*s.overprovisioning*float64(len(lvl.healthy))/float64(len(lvl.hosts)))
		}
		totalHealth += health[i]
		lvl.panic = s.panicThreshold > 0 &&
			100*float64(len(lvl.healthy))/float64(len(lvl.hosts)) < s.panicThreshold
	}

	load := make([]uint32, n)
	switch {
	case totalHealth > 0 && !allPanic(set.priorities):
		norm := min(100, totalHealth)
		left := uint32(100)
		first := -1
		for i := range load {
			load[i] = min(left, uint32(health[i]*100/norm))
			left -= load[i]
			if first < 0 && health[i] > 0 {
				first = i
			}
		}
		load[first] += left // rounding
	case s.panicThreshold > 0:
		// Total panic: every level is in panic, so load follows the levels' sizes.
		left := uint32(100)
		for i, lvl := range set.priorities {
			load[i] = uint32(100 * len(lvl.hosts) / len(hosts))
			left -= load[i]
		}
		load[0] += left
	default:
		// Nothing healthy and panic mode disabled: nothing to pick.
	}
	var cum uint32
	for i := range set.priorities {
		cum += load[i]
		set.cumLoad = append(set.cumLoad, cum)
		lvl := &set.priorities[i]
		if load[i] == 0 {
			continue
		}
		lvl.build(s, groups[i])
	}
	return set
}

func allPanic(ls []priorityLevel) bool {
	for _, l := range ls {
		if !l.panic {
			return false
		}
	}
	return true
}

// localityAvailability is Envoy's effective availability of a locality: its healthy share
// times the overprovisioning factor, capped at 1.
func localityAvailability(g localityGroup, overprovisioning float64) float64 {
	return min(1, overprovisioning*float64(len(g.healthy))/float64(len(g.hosts)))
}

// groupLocalities splits one level's hosts by locality, in order of first appearance.
func groupLocalities(hosts []*Host) []localityGroup {
	var out []localityGroup
	for _, h := range hosts {
		i := slices.IndexFunc(out, func(g localityGroup) bool { return g.hosts[0].Locality == h.Locality })
		if i < 0 {
			out = append(out, localityGroup{weight: max(h.LocalityWeight, 1)})
			i = len(out) - 1
		}
		out[i].hosts = append(out[i].hosts, h)
		if h.usable() {
			out[i].healthy = append(out[i].healthy, h)
		}
	}
	return out
}

func (lvl *priorityLevel) build(s *lbSettings, groups []localityGroup) {
	members := func(g localityGroup) []*Host {
		if lvl.panic {
			return g.hosts
		}
		return g.healthy
	}
	switch {
	case s.localityWeighted && s.hashed():
		// Envoy folds the locality weight into each host's: host weight as a share of its
		// locality's, times the locality's share.
		var hosts []*Host
		var weights []float64
		var sumLoc float64
		for _, g := range groups {
			if len(members(g)) > 0 {
				sumLoc += float64(g.weight)
			}
		}
		for _, g := range groups {
			hs := members(g)
			var sumHost float64
			for _, h := range hs {
				sumHost += float64(h.Weight)
			}
			for _, h := range hs {
				hosts = append(hosts, h)
				weights = append(weights, float64(h.Weight)/sumHost*float64(g.weight)/sumLoc)
			}
		}
		if len(hosts) > 0 {
			lvl.pick = newPicker(s, hosts, weights)
		}
	case s.localityWeighted:
		var cum uint64
		for _, g := range groups {
			hs := members(g)
			if len(hs) == 0 {
				continue
			}
			avail := 1.0
			if !lvl.panic {
				avail = localityAvailability(g, s.overprovisioning)
			}
			w := uint64(float64(g.weight) * avail * locWeightScale)
			if w == 0 {
				continue
			}
			cum += w
			lvl.locCum = append(lvl.locCum, cum)
			lvl.locPick = append(lvl.locPick, newPicker(s, hs, nil))
		}
	default:
		hs := lvl.healthy
		if lvl.panic {
			hs = lvl.hosts
		}
		if len(hs) > 0 {
			lvl.pick = newPicker(s, hs, nil)
		}
	}
}

// choose picks one host: a priority level by its load (by the request hash for hash
// policies, so a key sticks to a level), then a locality when locality-weighted, then a
// host by the policy.
func (s *endpointSet) choose(key, rnd, attempt uint64) *Host {
	if len(s.cumLoad) == 0 || s.cumLoad[len(s.cumLoad)-1] == 0 {
		return nil
	}
	// The priority draw must not correlate with the host draw that uses rnd.
	r := mix(rnd ^ 0x5851f42d4c957f2d)
	if s.hashed {
		r = key
	}
	pct := uint32(r % 100)
	i := 0
	for i < len(s.cumLoad)-1 && s.cumLoad[i] <= pct {
		i++
	}
	lvl := &s.priorities[i]
	if lvl.pick != nil {
		return lvl.pick.pick(key, rnd, attempt)
	}
	if len(lvl.locCum) == 0 {
		return nil
	}
	rnd = mix(rnd)
	j := searchCum(lvl.locCum, rnd%lvl.locCum[len(lvl.locCum)-1])
	return lvl.locPick[j].pick(key, mix(rnd), attempt)
}
