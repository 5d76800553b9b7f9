package admin

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// The types below reproduce the JSON that Envoy's admin API writes for its envoy.admin.v3
// protos (protojson with proto field names), so that tools parsing Envoy's output parse ours.
// As with protojson, zero values are left out, 64-bit integers are strings, and durations are
// strings such as "1.500s".

type serverInfoJSON struct {
	Version            string                 `json:"version"`
	State              State                  `json:"state"`
	HotRestartVersion  string                 `json:"hot_restart_version"`
	CommandLineOptions commandLineOptionsJSON `json:"command_line_options"`
	UptimeCurrentEpoch string                 `json:"uptime_current_epoch"`
	UptimeAllEpochs    string                 `json:"uptime_all_epochs"`
}

// commandLineOptionsJSON prints every field, zero or not, as Envoy does for /server_info.
type commandLineOptionsJSON struct {
	ConfigPath  string `json:"config_path"`
	LogLevel    string `json:"log_level"`
	Concurrency uint32 `json:"concurrency"`
	DrainTime   string `json:"drain_time"`
	Mode        string `json:"mode"`
}

func (s *Server) serverInfoJSON(info ServerInfo) serverInfoJSON {
	all := info.UptimeAllEpochs
	if all == 0 {
		all = info.UptimeCurrentEpoch
	}
	mode := info.CommandLineOptions.Mode
	if mode == "" {
		mode = "Serve" // the zero value of Envoy's CommandLineOptions.Mode
	}
	return serverInfoJSON{
		Version:           s.version(info),
		State:             s.state(info),
		HotRestartVersion: "disabled",
		CommandLineOptions: commandLineOptionsJSON{
			ConfigPath:  info.CommandLineOptions.ConfigPath,
			LogLevel:    info.CommandLineOptions.LogLevel,
			Concurrency: info.CommandLineOptions.Concurrency,
			DrainTime:   durationJSON(info.CommandLineOptions.DrainTime),
			Mode:        mode,
		},
		// Envoy reports uptime in whole seconds.
		UptimeCurrentEpoch: durationJSON(info.UptimeCurrentEpoch.Truncate(time.Second)),
		UptimeAllEpochs:    durationJSON(all.Truncate(time.Second)),
	}
}

// durationJSON formats d as protojson formats a google.protobuf.Duration: seconds, with 0, 3,
// 6 or 9 fractional digits, and an "s".
func durationJSON(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	secs, nanos := int64(d/time.Second), int64(d%time.Second)
	if nanos == 0 {
		return sign + strconv.FormatInt(secs, 10) + "s"
	}
	frac := strconv.FormatInt(nanos+1e9, 10)[1:] // nine digits, zero-padded
	for strings.HasSuffix(frac, "000") {
		frac = frac[:len(frac)-3]
	}
	return sign + strconv.FormatInt(secs, 10) + "." + frac + "s"
}

type clustersDoc struct {
	ClusterStatuses []clusterJSON `json:"cluster_statuses,omitempty"`
}

type clusterJSON struct {
	Name         string     `json:"name"`
	AddedViaAPI  bool       `json:"added_via_api,omitempty"`
	HostStatuses []hostJSON `json:"host_statuses,omitempty"`
}

type hostJSON struct {
	Address      addressJSON    `json:"address"`
	Stats        []metricJSON   `json:"stats"`
	HealthStatus hostHealthJSON `json:"health_status"`
	Weight       uint32         `json:"weight,omitempty"`
}

// metricJSON is envoy.admin.v3.SimpleMetric. Type is empty for a counter, the enum's zero.
type metricJSON struct {
	Type  string `json:"type,omitempty"`
	Value uint64 `json:"value,omitempty,string"`
	Name  string `json:"name"`
}

// hostHealthJSON is envoy.admin.v3.HostHealthStatus.
type hostHealthJSON struct {
	FailedActiveHealthCheck    bool   `json:"failed_active_health_check,omitempty"`
	FailedOutlierCheck         bool   `json:"failed_outlier_check,omitempty"`
	FailedActiveDegradedCheck  bool   `json:"failed_active_degraded_check,omitempty"`
	PendingDynamicRemoval      bool   `json:"pending_dynamic_removal,omitempty"`
	PendingActiveHC            bool   `json:"pending_active_hc,omitempty"`
	ExcludedViaImmediateHCFail bool   `json:"excluded_via_immediate_hc_fail,omitempty"`
	ActiveHCTimeout            bool   `json:"active_hc_timeout,omitempty"`
	EDSHealthStatus            string `json:"eds_health_status,omitempty"`
}

func clustersJSON(clusters []ClusterStatus) clustersDoc {
	var doc clustersDoc
	for _, c := range clusters {
		cj := clusterJSON{Name: c.Name, AddedViaAPI: c.AddedViaAPI}
		for _, h := range c.Hosts {
			cj.HostStatuses = append(cj.HostStatuses, hostJSON{
				Address: addressOf(h.Address),
				Stats: []metricJSON{
					{Type: "GAUGE", Value: h.ActiveConnections, Name: "cx_active"},
					{Value: h.TotalConnections, Name: "cx_total"},
					{Type: "GAUGE", Value: h.ActiveRequests, Name: "rq_active"},
				},
				HealthStatus: hostHealth(h.Health),
				Weight:       h.Weight,
			})
		}
		doc.ClusterStatuses = append(doc.ClusterStatuses, cj)
	}
	return doc
}

// hostHealth maps the flags as Envoy's admin does: the EDS flags become eds_health_status,
// the others become booleans.
func hostHealth(f HealthFlags) hostHealthJSON {
	h := hostHealthJSON{
		FailedActiveHealthCheck:    f&FailedActiveHC != 0,
		FailedOutlierCheck:         f&FailedOutlierCheck != 0,
		FailedActiveDegradedCheck:  f&DegradedActiveHC != 0,
		PendingDynamicRemoval:      f&PendingDynamicRemoval != 0,
		PendingActiveHC:            f&PendingActiveHC != 0,
		ExcludedViaImmediateHCFail: f&ExcludedViaImmediateHCFail != 0,
		ActiveHCTimeout:            f&ActiveHCTimeout != 0,
	}
	switch {
	case f&FailedEDSHealth != 0:
		h.EDSHealthStatus = "UNHEALTHY"
	case f&EDSStatusDraining != 0:
		h.EDSHealthStatus = "DRAINING"
	case f&DegradedEDSHealth != 0:
		h.EDSHealthStatus = "DEGRADED"
	default:
		h.EDSHealthStatus = "HEALTHY"
	}
	return h
}

type listenersDoc struct {
	ListenerStatuses []listenerJSON `json:"listener_statuses,omitempty"`
}

// listenerJSON is envoy.admin.v3.ListenerStatus plus active_connections, which Envoy reports
// only through /stats (which Nuncio does not serve).
type listenerJSON struct {
	Name              string      `json:"name"`
	LocalAddress      addressJSON `json:"local_address"`
	ActiveConnections uint64      `json:"active_connections,string"`
}

func listenersJSON(listeners []ListenerStatus) listenersDoc {
	var doc listenersDoc
	for _, l := range listeners {
		doc.ListenerStatuses = append(doc.ListenerStatuses, listenerJSON{
			Name:              l.Name,
			LocalAddress:      addressOf(l.Address),
			ActiveConnections: l.ActiveConnections,
		})
	}
	return doc
}

// addressJSON is envoy.config.core.v3.Address: a socket address or a pipe.
type addressJSON struct {
	SocketAddress *socketAddressJSON `json:"socket_address,omitempty"`
	Pipe          *pipeJSON          `json:"pipe,omitempty"`
}

type socketAddressJSON struct {
	Address   string `json:"address"`
	PortValue uint32 `json:"port_value,omitempty"`
}

type pipeJSON struct {
	Path string `json:"path"`
}

// addressOf parses the "host:port" or socket path of the Source's reports. A string that is
// neither is shown whole as the socket address rather than dropped.
func addressOf(s string) addressJSON {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "@") {
		return addressJSON{Pipe: &pipeJSON{Path: s}}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return addressJSON{SocketAddress: &socketAddressJSON{Address: s}}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return addressJSON{SocketAddress: &socketAddressJSON{Address: s}}
	}
	return addressJSON{SocketAddress: &socketAddressJSON{Address: host, PortValue: uint32(p)}}
}
