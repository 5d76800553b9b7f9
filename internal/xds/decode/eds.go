package decode

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var _ = allow(&clusterv3.Cluster_EdsClusterConfig{}, "eds_config", "service_name")

// edsConfig decodes an EDS cluster's eds_cluster_config. Endpoints come later, by EDS; an
// inline load_assignment would be replaced by the first of them, so it is refused.
func edsConfig(p path, c *clusterv3.Cluster) (*model.EDSConfig, error) {
	if c.GetLoadAssignment() != nil {
		return nil, p.field("load_assignment").errorf("not allowed on an EDS cluster (endpoints come from EDS)")
	}
	ep := p.field("eds_cluster_config")
	ec := c.GetEdsClusterConfig()
	if ec == nil || ec.GetEdsConfig() == nil {
		return nil, ep.field("eds_config").errorf("required for an EDS cluster")
	}
	out := &model.EDSConfig{ServiceName: ec.GetServiceName()}
	if out.ServiceName == "" {
		out.ServiceName = c.GetName()
	}
	var err error
	out.ConfigSource, err = adsSource(ep.field("eds_config"), ec.GetEdsConfig())
	return out, err
}
