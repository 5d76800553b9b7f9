package router

import "github.com/nuncio-gw/nuncio/internal/cluster"

// The router's view of the cluster's load balancer, circuit breakers and outlier detector,
// in one place so the rest of the router reads the same whatever the cluster offers.

// choose picks a host. With exclude set the balancer picks up to tries times for a host
// exclude accepts and settles for the last one otherwise (host_selection_retry_max_attempts).
func choose(c *cluster.Cluster, hash uint64, hasHash bool, rnd uint64, exclude func(*cluster.Host) bool, tries int) *cluster.Host {
	lc := cluster.LBContext{Hash: hash, HasHash: hasHash, Rnd: rnd, Exclude: exclude, MaxAttempts: tries}
	return c.Choose(&lc)
}

// reportResult feeds outlier detection with an attempt's outcome.
func reportResult(h *cluster.Host, status int, localOriginFailure bool) {
	h.ReportResult(status, localOriginFailure)
}

// breakers returns the request-level circuit breakers of the route's routing priority
// (DEFAULT unless the route says HIGH). A refused Try counts its overflow stat itself.
func (f *filter) breakers() *cluster.Breakers {
	if f.fw != nil && f.fw.HighPriority {
		return f.c.BreakersHigh()
	}
	return f.c.Breakers()
}
