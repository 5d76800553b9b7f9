package xdsgen

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A cluster's outlier detection ejects endpoints that fail in a row.
func init() {
	register(&feature{name: "outlier", order: 310, cluster: func(out *clusterv3.Cluster, c *ir.Cluster) {
		od := c.OutlierDetection
		if od == nil {
			return
		}
		out.OutlierDetection = &clusterv3.OutlierDetection{
			Consecutive_5Xx:    u32(od.Consecutive5xx),
			Interval:           optDur(od.Interval),
			BaseEjectionTime:   optDur(od.BaseEjectionTime),
			MaxEjectionPercent: u32(od.MaxEjectionPercent),
		}
	}})
}

func u32(v *uint32) *wrapperspb.UInt32Value {
	if v == nil {
		return nil
	}
	return wrapperspb.UInt32(*v)
}
