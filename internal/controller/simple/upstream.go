package simple

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// Health-check defaults of the simple config. Envoy has none for these required fields;
// these suit most services.
const (
	defaultHCInterval           = 10 * time.Second
	defaultHCTimeout            = time.Second
	defaultHCHealthyThreshold   = 1
	defaultHCUnhealthyThreshold = 3
)

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"round_robin":   clusterv3.Cluster_ROUND_ROBIN,
	"least_request": clusterv3.Cluster_LEAST_REQUEST,
	"random":        clusterv3.Cluster_RANDOM,
	"ring_hash":     clusterv3.Cluster_RING_HASH,
	"maglev":        clusterv3.Cluster_MAGLEV,
}

// upstreamResilience adds a backend's load balancing, health check, outlier detection and
// circuit breaker to its cluster.
func upstreamResilience(c *clusterv3.Cluster, b *v1alpha1.Backend) {
	if lb := b.LoadBalancer; lb != nil {
		c.LbPolicy = lbPolicies[lb.Policy]
	}
	if hc := b.HealthCheck; hc != nil {
		c.HealthChecks = []*corev3.HealthCheck{healthCheck(hc)}
	}
	if od := b.OutlierDetection; od != nil {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:    u32(od.Consecutive5xx),
			Interval:           duration(od.Interval),
			BaseEjectionTime:   duration(od.BaseEjectionTime),
			MaxEjectionPercent: u32(od.MaxEjectionPercent),
		}
	}
	if cb := b.CircuitBreaker; cb != nil {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     u32(cb.MaxConnections),
			MaxPendingRequests: u32(cb.MaxPendingRequests),
			MaxRequests:        u32(cb.MaxRequests),
			MaxRetries:         u32(cb.MaxRetries),
		}}}
	}
}

func healthCheck(hc *v1alpha1.HealthCheck) *corev3.HealthCheck {
	interval := durationOr(hc.Interval, defaultHCInterval)
	out := &corev3.HealthCheck{
		Timeout:            durationOr(hc.Timeout, defaultHCTimeout),
		Interval:           interval,
		UnhealthyThreshold: wrapperspb.UInt32(defaultHCUnhealthyThreshold),
		HealthyThreshold:   wrapperspb.UInt32(defaultHCHealthyThreshold),
		// Envoy probes a backend that has had no traffic only once a minute; a simple config
		// means its interval.
		NoTrafficInterval: interval,
	}
	if hc.UnhealthyThreshold != nil {
		out.UnhealthyThreshold = wrapperspb.UInt32(*hc.UnhealthyThreshold)
	}
	if hc.HealthyThreshold != nil {
		out.HealthyThreshold = wrapperspb.UInt32(*hc.HealthyThreshold)
	}
	switch {
	case hc.HTTP != nil:
		h := &corev3.HealthCheck_HttpHealthCheck{Path: hc.HTTP.Path}
		if h.Path == "" {
			h.Path = "/"
		}
		for _, s := range hc.HTTP.ExpectedStatuses {
			h.ExpectedStatuses = append(h.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
		}
		out.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h}
	case hc.TCP != nil:
		out.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	case hc.GRPC != nil:
		out.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: hc.GRPC.Service}}
	}
	return out
}

func u32(v *uint32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(*v)
}
