package cluster

import "sync/atomic"

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
// shared by the successive Host values of one endpoint.
type hostState struct {
	flags atomic.Uint32
	used  atomic.Bool // has carried a request (health checks use no_traffic_interval until then)
}

func (c *Cluster) newHostState() *hostState { return &hostState{} }

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
// status 0 with localOriginFailure for a connect failure, reset or timeout before a response.
func (h *Host) ReportResult(status int, localOriginFailure bool) {}
