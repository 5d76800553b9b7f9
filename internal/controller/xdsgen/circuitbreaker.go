package xdsgen

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A cluster's circuit breaker is its default-priority thresholds.
func init() {
	register(&feature{name: "circuitbreaker", order: 320, cluster: func(out *clusterv3.Cluster, c *ir.Cluster) {
		cb := c.CircuitBreaker
		if cb == nil {
			return
		}
		out.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			Priority:           corev3.RoutingPriority_DEFAULT,
			MaxConnections:     u32(cb.MaxConnections),
			MaxPendingRequests: u32(cb.MaxPendingRequests),
			MaxRequests:        u32(cb.MaxRequests),
			MaxRetries:         u32(cb.MaxRetries),
		}}}
	}})
}
