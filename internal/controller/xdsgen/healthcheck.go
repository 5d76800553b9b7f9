package xdsgen

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A cluster's health check is its active HTTP, TCP or gRPC probe.
func init() {
	register(&feature{name: "healthcheck", order: 300, cluster: func(out *clusterv3.Cluster, c *ir.Cluster) {
		hc := c.HealthCheck
		if hc == nil {
			return
		}
		h := &corev3.HealthCheck{
			Timeout:            dur(hc.Timeout.Duration),
			Interval:           dur(hc.Interval.Duration),
			NoTrafficInterval:  optDur(hc.NoTrafficInterval),
			UnhealthyThreshold: wrapperspb.UInt32(hc.UnhealthyThreshold),
			HealthyThreshold:   wrapperspb.UInt32(hc.HealthyThreshold),
		}
		switch {
		case hc.HTTP != nil:
			hh := &corev3.HealthCheck_HttpHealthCheck{Path: hc.HTTP.Path}
			for _, s := range hc.HTTP.ExpectedStatuses {
				hh.ExpectedStatuses = append(hh.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
			}
			h.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: hh}
		case hc.TCP:
			h.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
		case hc.GRPC != nil:
			h.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: hc.GRPC.Service}}
		}
		out.HealthChecks = []*corev3.HealthCheck{h}
	}})
}
