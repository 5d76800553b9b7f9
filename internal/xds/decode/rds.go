package decode

import (
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var _ = allow(&hcmv3.Rds{}, "config_source", "route_config_name")

// rds decodes an HCM's rds field: the name of a route table that arrives over RDS.
func rds(p path, r *hcmv3.Rds) (*model.RDS, error) {
	out := &model.RDS{RouteConfigName: r.GetRouteConfigName()}
	if out.RouteConfigName == "" {
		return nil, p.field("route_config_name").errorf("required")
	}
	if r.GetConfigSource() == nil {
		return nil, p.field("config_source").errorf("required")
	}
	var err error
	out.ConfigSource, err = adsSource(p.field("config_source"), r.GetConfigSource())
	return out, err
}
