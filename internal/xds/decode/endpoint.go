package decode

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&endpointv3.ClusterLoadAssignment{}, "cluster_name", "endpoints")
	_ = allow(&endpointv3.LocalityLbEndpoints{}, "locality", "lb_endpoints", "load_balancing_weight", "priority")
	_ = allow(&corev3.Locality{}, "region", "zone", "sub_zone")
	_ = allow(&endpointv3.LbEndpoint{}, "endpoint", "health_status", "load_balancing_weight")
	_ = allow(&endpointv3.Endpoint{}, "address", "hostname")
)

// Endpoints decodes an EDS ClusterLoadAssignment. EDS delivers resolved endpoints, so every
// address must be an IP literal.
func Endpoints(cla *endpointv3.ClusterLoadAssignment) ([]model.LocalityEndpoints, error) {
	if err := strict("", cla); err != nil {
		return nil, err
	}
	return endpoints("", cla, true)
}

func endpoints(p path, cla *endpointv3.ClusterLoadAssignment, ipOnly bool) ([]model.LocalityEndpoints, error) {
	if cla.GetClusterName() == "" {
		return nil, p.field("cluster_name").errorf("required")
	}
	var out []model.LocalityEndpoints
	for i, le := range cla.GetEndpoints() {
		lp := p.field("endpoints").index(i)
		loc := model.LocalityEndpoints{
			Region:   le.GetLocality().GetRegion(),
			Zone:     le.GetLocality().GetZone(),
			SubZone:  le.GetLocality().GetSubZone(),
			Priority: le.GetPriority(),
		}
		if v := le.GetLoadBalancingWeight(); v != nil {
			if v.GetValue() < 1 {
				return nil, lp.field("load_balancing_weight").errorf("must be at least 1")
			}
			loc.Weight = v.GetValue()
		}
		for j, lb := range le.GetLbEndpoints() {
			ep, err := lbEndpoint(lp.field("lb_endpoints").index(j), lb, ipOnly)
			if err != nil {
				return nil, err
			}
			loc.Endpoints = append(loc.Endpoints, ep)
		}
		out = append(out, loc)
	}
	return out, nil
}

func lbEndpoint(p path, lb *endpointv3.LbEndpoint, ipOnly bool) (model.Endpoint, error) {
	var out model.Endpoint
	e := lb.GetEndpoint()
	if e == nil {
		return out, p.field("endpoint").errorf("required")
	}
	ep := p.field("endpoint")
	var err error
	ipOnlyWhy := ""
	if ipOnly {
		ipOnlyWhy = "STATIC clusters and EDS need IP addresses; use STRICT_DNS or LOGICAL_DNS for host names"
	}
	if out.Address, err = socketAddress(ep.field("address"), e.GetAddress(), ipOnlyWhy); err != nil {
		return out, err
	}
	if out.Address.Port == 0 {
		return out, ep.field("address").field("socket_address").field("port_value").errorf("required")
	}
	out.Hostname = e.GetHostname()
	out.Weight = 1
	if v := lb.GetLoadBalancingWeight(); v != nil {
		if v.GetValue() < 1 {
			return out, p.field("load_balancing_weight").errorf("must be at least 1")
		}
		out.Weight = v.GetValue()
	}
	switch lb.GetHealthStatus() {
	case corev3.HealthStatus_UNKNOWN, corev3.HealthStatus_HEALTHY:
	case corev3.HealthStatus_DEGRADED:
		out.Degraded = true
	default: // UNHEALTHY, DRAINING, TIMEOUT
		out.Unhealthy = true
	}
	return out, nil
}
