package admin

import (
	"strings"
	"time"
)

// Source is what the admin server reports on. The server holds no state of the gateway; every
// request asks the Source afresh, so its methods are called concurrently from request goroutines
// and must be safe for that.
type Source interface {
	// ConfigDump returns the configuration in force as JSON in the shape of Envoy's
	// envoy.admin.v3.ConfigDump (a top-level "configs" array of "@type"-tagged sections).
	ConfigDump() ([]byte, error)
	// Clusters reports every cluster and its hosts.
	Clusters() []ClusterStatus
	// Listeners reports every listener that is bound.
	Listeners() []ListenerStatus
	// ServerInfo reports the server's version, lifecycle state and uptime.
	ServerInfo() ServerInfo
}

// ClusterStatus is one cluster as /clusters shows it.
type ClusterStatus struct {
	Name string
	// AddedViaAPI is true for clusters that came from xDS rather than the static config.
	AddedViaAPI bool
	Hosts       []HostStatus
}

// HostStatus is one endpoint of a cluster.
type HostStatus struct {
	// Address is "host:port", or a filesystem path (or "@name") for a Unix socket.
	Address           string
	Weight            uint32
	Health            HealthFlags
	ActiveRequests    uint64
	ActiveConnections uint64
	// TotalConnections counts every connection opened to the host since it was added.
	TotalConnections uint64
}

// HealthFlags are the reasons a host is not healthy; zero means healthy. They are Envoy's
// Upstream::Host::HealthFlag values, so /clusters prints the same words Envoy does.
type HealthFlags uint32

// The flags, in Envoy's order, which is also the order in which String lists them.
const (
	FailedActiveHC HealthFlags = 1 << iota
	FailedOutlierCheck
	FailedEDSHealth
	DegradedActiveHC
	DegradedEDSHealth
	PendingDynamicRemoval
	PendingActiveHC
	ExcludedViaImmediateHCFail
	ActiveHCTimeout
	EDSStatusDraining
)

var healthFlagNames = [...]string{
	"failed_active_hc",
	"failed_outlier_check",
	"failed_eds_health",
	"degraded_active_hc",
	"degraded_eds_health",
	"pending_dynamic_removal",
	"pending_active_hc",
	"excluded_via_immediate_hc_fail",
	"active_hc_timeout",
	"eds_status_draining",
}

// String formats the flags as Envoy's /clusters does: "healthy" when none is set, otherwise
// each set flag prefixed with a slash, e.g. "/failed_active_hc/failed_outlier_check".
func (f HealthFlags) String() string {
	f &= 1<<len(healthFlagNames) - 1 // bits Envoy has no name for are not a reason
	if f == 0 {
		return "healthy"
	}
	var b strings.Builder
	for i, name := range healthFlagNames {
		if f&(1<<i) != 0 {
			b.WriteByte('/')
			b.WriteString(name)
		}
	}
	return b.String()
}

// ListenerStatus is one bound listener.
type ListenerStatus struct {
	Name string
	// Address is the address actually bound, "host:port" (so a configured port 0 shows the
	// port the kernel chose), or a path for a Unix socket.
	Address           string
	ActiveConnections uint64
}

// ServerInfo is what /server_info reports. The hot restart version is not part of it: Nuncio
// has no hot restart, so the server always reports "disabled".
type ServerInfo struct {
	// Version overrides Options.Version when not empty.
	Version string
	State   State
	// UptimeCurrentEpoch is the time since this process started.
	UptimeCurrentEpoch time.Duration
	// UptimeAllEpochs equals UptimeCurrentEpoch when zero: without hot restart there is only
	// one epoch.
	UptimeAllEpochs    time.Duration
	CommandLineOptions CommandLineOptions
}

// CommandLineOptions are the flags the server was started with, under Envoy's field names.
type CommandLineOptions struct {
	ConfigPath  string
	LogLevel    string
	Concurrency uint32
	DrainTime   time.Duration
	// Mode is Envoy's: "Serve" for run, "Validate" for validate.
	Mode string
}

// State is the server's lifecycle state, Envoy's envoy.admin.v3.ServerInfo.State. The zero value
// is StatePreInitializing, so a Source that never sets it reports not ready rather than live.
type State uint8

// The states in the order a server passes through them.
const (
	StatePreInitializing State = iota
	StateInitializing
	StateLive
	StateDraining
)

// String returns Envoy's name for the state.
func (s State) String() string {
	switch s {
	case StatePreInitializing:
		return "PRE_INITIALIZING"
	case StateInitializing:
		return "INITIALIZING"
	case StateLive:
		return "LIVE"
	case StateDraining:
		return "DRAINING"
	}
	return "UNKNOWN"
}

// MarshalText makes the state appear by name in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// The interfaces below are optional: a Source implements those it can, and the admin server
// finds them with a type assertion, so a Source written before they existed keeps compiling.

// StatsRefresher is a Source with stats computed on demand (uptime, memory), refreshed before
// /stats, /stats/prometheus and the dashboard read the store.
type StatsRefresher interface {
	RefreshStats()
}

// ListenerDrainer is a Source that can drain its listeners for POST /drain_listeners.
type ListenerDrainer interface {
	// DrainListeners stops every listener from accepting. With graceful, open connections are
	// asked to close (Connection: close, GOAWAY) and given the drain time; without it, they
	// are closed at once. It returns without waiting for the drain to finish.
	DrainListeners(graceful bool) error
}

// ConfigReporter is a Source that reports which configuration is in force and the last update
// it refused, for the dashboard.
type ConfigReporter interface {
	ConfigStatus() ConfigStatus
}

// ConfigStatus is the configuration in force and the last refused update.
type ConfigStatus struct {
	// Version identifies the configuration in force; empty before the first one.
	Version   string
	AppliedAt time.Time
	// LastRejection is the last update refused, or nil when none was.
	LastRejection *Rejection
}

// Rejection is a refused configuration update.
type Rejection struct {
	At     time.Time
	Reason string
}
