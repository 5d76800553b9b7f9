package decode

import (
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// defaultInitialFetchTimeout is Envoy's initial_fetch_timeout default.
const defaultInitialFetchTimeout = 15 * time.Second

var (
	_ = allow(&bootstrapv3.Bootstrap_DynamicResources{}, "lds_config", "cds_config", "ads_config")
	_ = allow(&corev3.ConfigSource{}, "ads", "self", "api_config_source", "initial_fetch_timeout",
		"resource_api_version")
	_ = allow(&corev3.AggregatedConfigSource{})
	_ = allow(&corev3.SelfConfigSource{}, "transport_api_version")
	_ = allow(&corev3.ApiConfigSource{}, "api_type", "transport_api_version", "grpc_services",
		"set_node_on_first_message_only")
	_ = allow(&corev3.GrpcService{}, "envoy_grpc", "google_grpc", "timeout")
	_ = allow(&corev3.GrpcService_EnvoyGrpc{}, "cluster_name")
	_ = allow(&corev3.GrpcService_GoogleGrpc{}, "target_uri", "stat_prefix")
)

// dynamicResources decodes the bootstrap's dynamic_resources. Only ADS is supported: every
// resource type travels on the one stream ads_config describes, which is what lds_config and
// cds_config must say (ads: {}). The ADS server is reached through a static cluster with one
// endpoint (envoy_grpc) or a gRPC target (google_grpc.target_uri).
func dynamicResources(p path, dr *bootstrapv3.Bootstrap_DynamicResources, clusters []*model.Cluster) (*model.DynamicResources, error) {
	out := &model.DynamicResources{}
	ap := p.field("ads_config")
	ads := dr.GetAdsConfig()
	if ads == nil {
		return nil, ap.errorf("required (only ADS is supported)")
	}
	switch ads.GetApiType() {
	case corev3.ApiConfigSource_GRPC:
	case corev3.ApiConfigSource_DELTA_GRPC:
		out.Delta = true
	default:
		return nil, ap.field("api_type").errorf("%s not supported (GRPC or DELTA_GRPC)", ads.GetApiType())
	}
	if ads.GetTransportApiVersion() == corev3.ApiVersion_V2 {
		return nil, ap.field("transport_api_version").errorf("V2 not supported")
	}
	gs := ads.GetGrpcServices()
	if len(gs) != 1 {
		return nil, ap.field("grpc_services").errorf("exactly one required, have %d", len(gs))
	}
	gp := ap.field("grpc_services").index(0)
	switch {
	case gs[0].GetEnvoyGrpc() != nil:
		cp := gp.field("envoy_grpc").field("cluster_name")
		name := gs[0].GetEnvoyGrpc().GetClusterName()
		if name == "" {
			return nil, cp.errorf("required")
		}
		target, err := clusterTarget(cp, name, clusters)
		if err != nil {
			return nil, err
		}
		out.ADSCluster, out.Target = name, target
	case gs[0].GetGoogleGrpc() != nil:
		out.Target = gs[0].GetGoogleGrpc().GetTargetUri()
		if out.Target == "" {
			return nil, gp.field("google_grpc").field("target_uri").errorf("required")
		}
	default:
		return nil, gp.errorf("one of envoy_grpc, google_grpc required")
	}
	var err error
	if dr.GetLdsConfig() != nil {
		out.LDS = true
		if out.LDSSource, err = adsSource(p.field("lds_config"), dr.GetLdsConfig()); err != nil {
			return nil, err
		}
	}
	if dr.GetCdsConfig() != nil {
		out.CDS = true
		if out.CDSSource, err = adsSource(p.field("cds_config"), dr.GetCdsConfig()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// clusterTarget is the address of the static cluster name, which must have one endpoint:
// gRPC keeps its own connection to the management server rather than balancing over a
// cluster's hosts.
func clusterTarget(p path, name string, clusters []*model.Cluster) (string, error) {
	for _, c := range clusters {
		if c.Name != name {
			continue
		}
		var eps []model.Endpoint
		for _, l := range c.Localities {
			eps = append(eps, l.Endpoints...)
		}
		if c.Type == model.ClusterEDS || len(eps) != 1 {
			return "", p.errorf("cluster %q must be a static or DNS cluster with exactly one endpoint", name)
		}
		return hostPort(eps[0].Address), nil
	}
	return "", p.errorf("unknown cluster %q (the ADS cluster must be a static cluster)", name)
}

// adsSource decodes a ConfigSource for a resource carried on the ADS stream: ads: {}, self,
// or an api_config_source with a gRPC service (which Nuncio serves from the ADS stream too,
// so that a config written for several streams still loads).
func adsSource(p path, cs *corev3.ConfigSource) (model.ConfigSource, error) {
	var out model.ConfigSource
	if cs.GetResourceApiVersion() == corev3.ApiVersion_V2 {
		return out, p.field("resource_api_version").errorf("V2 not supported")
	}
	switch s := cs.GetConfigSourceSpecifier().(type) {
	case *corev3.ConfigSource_Ads, *corev3.ConfigSource_Self:
	case *corev3.ConfigSource_ApiConfigSource:
		ap := p.field("api_config_source")
		switch s.ApiConfigSource.GetApiType() {
		case corev3.ApiConfigSource_GRPC, corev3.ApiConfigSource_DELTA_GRPC:
		default:
			return out, ap.field("api_type").errorf("%s not supported (resources come from the ADS stream)", s.ApiConfigSource.GetApiType())
		}
		if s.ApiConfigSource.GetTransportApiVersion() == corev3.ApiVersion_V2 {
			return out, ap.field("transport_api_version").errorf("V2 not supported")
		}
	case nil:
		return out, p.errorf("one of ads, self, api_config_source required")
	default:
		return out, p.errorf("config source not supported (use ads: {})")
	}
	var err error
	out.InitialFetchTimeout, err = duration(p.field("initial_fetch_timeout"), cs.GetInitialFetchTimeout(), defaultInitialFetchTimeout)
	return out, err
}

// clustersWithoutADS refuses EDS clusters and SDS secrets in a bootstrap that has no ADS
// stream to deliver them.
func clustersWithoutADS(p path, cs []*model.Cluster) error {
	for i, c := range cs {
		cp := p.field("clusters").index(i)
		if c.EDS != nil {
			return cp.field("type").errorf("EDS requires dynamic_resources.ads_config")
		}
		if c.TLS != nil && (c.TLS.ClientCertSecret != nil || c.TLS.ValidationSecret != nil) {
			return cp.field("transport_socket").errorf("SDS secrets require dynamic_resources.ads_config")
		}
	}
	return nil
}

// listenerWithoutADS refuses RDS and SDS references in a bootstrap without ADS.
func listenerWithoutADS(p path, l *listenerv3.Listener, ml *model.Listener) error {
	check := func(fp path, nfilters int, fc *model.FilterChain) error {
		if fc.HCM != nil && fc.HCM.RDS != nil {
			return fp.field("filters").index(nfilters - 1).field("typed_config").field("rds").errorf("requires dynamic_resources.ads_config")
		}
		if fc.TLS != nil && (len(fc.TLS.CertificateSecrets) > 0 || fc.TLS.ValidationSecret != nil) {
			return fp.field("transport_socket").errorf("SDS secrets require dynamic_resources.ads_config")
		}
		return nil
	}
	return eachChain(p, l, ml, check)
}
