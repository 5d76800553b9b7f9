package cluster

import (
	"context"
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/cluster/health"
	"github.com/nuncio-gw/nuncio/internal/cluster/outlier"
)

// HealthFlag is a reason a host is not used, as Envoy's Host::HealthFlag.
type HealthFlag uint32

const (
	// FailedActiveHC: the active health check failed (or has not passed yet).
	FailedActiveHC HealthFlag = 1 << iota
	// PendingActiveHC: a host added to a health-checked cluster waits for its first check.
	PendingActiveHC
	// FailedOutlierCheck: outlier detection ejected the host.
	FailedOutlierCheck
	// ActiveHCTimeout: the last failed check timed out.
	ActiveHCTimeout
)

// hostState is what is known about a host's health beyond what its source said. It is
// shared by the successive Host values of one endpoint, like its pools.
type hostState struct {
	flags atomic.Uint32
	used  *atomic.Bool     // the cluster's: has carried a request
	od    *outlier.Monitor // nil without outlier detection
	addr  string           // the address health checks go to
}

func (st *hostState) set(f HealthFlag, on bool) {
	if on {
		st.flags.Or(uint32(f))
	} else {
		st.flags.And(^uint32(f))
	}
}

// newHostStateLocked starts watching a new host: health checks mark it failed and pending
// until its first check passes, and outlier detection starts counting its results.
func (c *Cluster) newHostStateLocked(key, addr string) *hostState {
	st := &hostState{used: &c.used, addr: addr}
	if c.od != nil {
		st.od = c.od.Add(func(ejected bool) { st.set(FailedOutlierCheck, ejected) })
	}
	if c.hc != nil {
		st.flags.Store(uint32(FailedActiveHC | PendingActiveHC))
		c.addHealthCheckLocked(key, st)
	}
	return st
}

func (c *Cluster) addHealthCheckLocked(key string, st *hostState) {
	c.hc.Add(key, st.addr, health.Hooks{
		SetFailed: func(failed, timeout bool) {
			st.set(PendingActiveHC, false)
			st.set(ActiveHCTimeout, failed && timeout)
			st.set(FailedActiveHC, failed)
			c.healthChanged()
		},
		Passed: func() {
			if st.od != nil {
				c.od.HealthCheckPassed(st.od)
			}
		},
	})
}

// dropHostStateLocked stops watching a host that left the cluster.
func (c *Cluster) dropHostStateLocked(key string, st *hostState) {
	if c.hc != nil {
		c.hc.Remove(key)
	}
	if st.od != nil {
		c.od.Remove(st.od)
	}
}

// healthChanged rebuilds the endpoint set after a host's health changed, so picks see it.
// Verdicts arriving together (a first round of checks) share one rebuild: a caller that
// finds one already waiting leaves it to that one, which reads every flag set before it
// takes the lock.
func (c *Cluster) healthChanged() {
	if c.rebuildPending.Swap(true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rebuildPending.Store(false)
	if c.closed {
		return
	}
	c.publishLocked(c.set.Load().hosts)
}

// publishLocked builds and publishes the endpoint set of hosts and updates the
// membership gauges.
func (c *Cluster) publishLocked(hosts []*Host) {
	s := buildSet(&c.lb, hosts)
	c.set.Store(s)
	healthy := 0
	for _, h := range hosts {
		if h.usable() {
			healthy++
		}
	}
	c.membershipTotal.Set(int64(len(hosts)))
	c.membershipHealthy.Set(int64(healthy))
}

// waitHealthChecks waits, within ctx, for the first check of every host, so a new
// cluster is published with verdicts rather than with every host pending.
func (c *Cluster) waitHealthChecks(ctx context.Context) {
	if c.hc != nil {
		c.hc.WaitFirst(ctx)
	}
}

// HealthFlags reports why the host is not used, zero when nothing is known against it.
func (h *Host) HealthFlags() HealthFlag {
	if h.st == nil {
		return 0
	}
	return HealthFlag(h.st.flags.Load())
}

// usable: the host may take requests outside panic mode.
func (h *Host) usable() bool {
	return h.Healthy && h.HealthFlags()&(FailedActiveHC|FailedOutlierCheck) == 0
}

// ReportResult tells outlier detection how one request to h ended: its HTTP status, or
// status 0 with localOriginFailure for a connect failure, reset or timeout before a
// response. It is a few atomic operations; without outlier detection it does nothing.
func (h *Host) ReportResult(status int, localOriginFailure bool) {
	if st := h.st; st != nil && st.od != nil {
		st.od.Report(status, localOriginFailure)
	}
}
