package cluster

// LBContext carries what a load balancer may use to choose a host for one attempt.
type LBContext struct {
	Hash    uint64 // request hash from the route's hash_policy, valid when HasHash
	HasHash bool
	Rnd     uint64 // a random number for this pick
	// Exclude, when set, rejects hosts (retry_host_predicate previous_hosts); the LB retries
	// up to MaxAttempts picks (host_selection_retry_max_attempts, default 1).
	Exclude     func(*Host) bool
	MaxAttempts int
}

// Choose returns the host for one attempt, or nil when the cluster has no host to offer
// (the router answers 503 with flag UH). It takes no lock and does not allocate.
//
// When Exclude rejects the chosen host, Choose picks again, up to MaxAttempts picks in
// all; if every pick is rejected the last one is returned, as Envoy does.
func (c *Cluster) Choose(lc *LBContext) *Host {
	s := c.set.Load()
	if s == nil {
		return nil
	}
	attempts := max(lc.MaxAttempts, 1)
	var h *Host
	for i := range uint64(attempts) {
		rnd := mix(lc.Rnd + i)
		key := rnd
		if lc.HasHash {
			key = lc.Hash
		}
		if h = s.choose(key, rnd, i); h == nil {
			return nil
		}
		if lc.Exclude == nil || !lc.Exclude(h) {
			return h
		}
	}
	return h
}

// Breakers returns the circuit breakers of the DEFAULT routing priority.
func (c *Cluster) Breakers() *Breakers { return c.breakers[0] }

// BreakersHigh returns the circuit breakers of the HIGH routing priority.
func (c *Cluster) BreakersHigh() *Breakers { return c.breakers[1] }
