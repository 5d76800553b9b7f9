package decode

import (
	"math"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&hcmv3.HttpConnectionManager_Tracing{}, "client_sampling", "random_sampling",
		"overall_sampling", "max_path_tag_length", "custom_tags", "provider", "spawn_upstream_span",
		"operation")
	_ = allow(&typev3.Percent{}, "value")
	_ = allow(&tracingv3.CustomTag{}, "tag", "literal", "request_header")
	_ = allow(&tracingv3.CustomTag_Literal{}, "value")
	_ = allow(&tracingv3.CustomTag_Header{}, "name", "default_value")
	_ = allow(&tracev3.Tracing_Http{}, "name", "typed_config")
	_ = allow(&tracev3.OpenTelemetryConfig{}, "grpc_service", "service_name", "max_cache_size")
)

func init() {
	// Also declared by the xDS config decoder; google_grpc is refused below for tracing.
	allowAlso(&corev3.GrpcService{}, "envoy_grpc", "google_grpc", "timeout")
	allowAlso(&corev3.GrpcService_EnvoyGrpc{}, "cluster_name", "authority")
}

const (
	otelTracerName       = "envoy.tracers.opentelemetry"
	defaultServiceName   = "unknown_service:envoy"
	defaultMaxPathTagLen = 256
	defaultSpanCacheSize = 1024
	defaultExportTimeout = 5 * time.Second
)

// tracing decodes the connection manager's tracing block; nil means no tracing.
func tracing(p path, t *hcmv3.HttpConnectionManager_Tracing) (*model.Tracing, error) {
	if t == nil {
		return nil, nil
	}
	out := &model.Tracing{
		ClientSampling: 100, RandomSampling: 100, OverallSampling: 100,
		MaxPathTagLength: defaultMaxPathTagLen, SpawnUpstreamSpan: true, Operation: t.GetOperation(),
	}
	for _, s := range []struct {
		name string
		v    *typev3.Percent
		dst  *float64
	}{
		{"client_sampling", t.GetClientSampling(), &out.ClientSampling},
		{"random_sampling", t.GetRandomSampling(), &out.RandomSampling},
		{"overall_sampling", t.GetOverallSampling(), &out.OverallSampling},
	} {
		if s.v == nil {
			continue
		}
		v := s.v.GetValue()
		if math.IsNaN(v) || v < 0 || v > 100 {
			return nil, p.field(s.name).field("value").errorf("%v out of range [0, 100]", v)
		}
		*s.dst = v
	}
	if v := t.GetMaxPathTagLength(); v != nil {
		out.MaxPathTagLength = v.GetValue()
	}
	if v := t.GetSpawnUpstreamSpan(); v != nil {
		out.SpawnUpstreamSpan = v.GetValue()
	}
	for i, ct := range t.GetCustomTags() {
		tp := p.field("custom_tags").index(i)
		if ct.GetTag() == "" {
			return nil, tp.field("tag").errorf("required")
		}
		tag := model.CustomTag{Tag: ct.GetTag()}
		switch v := ct.GetType().(type) {
		case *tracingv3.CustomTag_Literal_:
			tag.Literal = v.Literal.GetValue()
		case *tracingv3.CustomTag_RequestHeader:
			if v.RequestHeader.GetName() == "" {
				return nil, tp.field("request_header").field("name").errorf("required")
			}
			tag.RequestHeader = header.Lower(v.RequestHeader.GetName())
			tag.DefaultValue = v.RequestHeader.GetDefaultValue()
		default:
			return nil, tp.errorf("one of literal, request_header required")
		}
		out.CustomTags = append(out.CustomTags, tag)
	}

	pp := p.field("provider")
	prov := t.GetProvider()
	if prov == nil {
		return nil, pp.errorf("required (%s)", otelTracerName)
	}
	if prov.GetTypedConfig() == nil {
		return nil, pp.field("typed_config").errorf("required (%s)", otelTracerName)
	}
	msg, err := unpack(pp.field("typed_config"), prov.GetTypedConfig())
	if err != nil {
		return nil, err
	}
	oc, ok := msg.(*tracev3.OpenTelemetryConfig)
	if !ok {
		return nil, pp.field("typed_config").errorf("%s not supported (only %s)", prov.GetTypedConfig().GetTypeUrl(), otelTracerName)
	}
	tp := pp.field("typed_config")
	out.Provider = model.OpenTelemetry{
		ServiceName:  oc.GetServiceName(),
		MaxCacheSize: defaultSpanCacheSize,
		Timeout:      defaultExportTimeout,
	}
	if out.Provider.ServiceName == "" {
		out.Provider.ServiceName = defaultServiceName
	}
	if v := oc.GetMaxCacheSize(); v != nil {
		if v.GetValue() == 0 {
			return nil, tp.field("max_cache_size").errorf("must be at least 1")
		}
		out.Provider.MaxCacheSize = v.GetValue()
	}
	gs := oc.GetGrpcService()
	if gs == nil {
		return nil, tp.field("grpc_service").errorf("required: the OTLP collector's cluster")
	}
	gp := tp.field("grpc_service")
	if gs.GetGoogleGrpc() != nil {
		return nil, gp.field("google_grpc").errorf("not supported (use envoy_grpc)")
	}
	if gs.GetEnvoyGrpc().GetClusterName() == "" {
		return nil, gp.field("envoy_grpc").field("cluster_name").errorf("required")
	}
	out.Provider.CollectorCluster = gs.GetEnvoyGrpc().GetClusterName()
	out.Provider.Authority = gs.GetEnvoyGrpc().GetAuthority()
	if gs.GetTimeout() != nil {
		if out.Provider.Timeout, err = duration(gp.field("timeout"), gs.GetTimeout(), defaultExportTimeout); err != nil {
			return nil, err
		}
		if out.Provider.Timeout == 0 {
			out.Provider.Timeout = defaultExportTimeout
		}
	}
	return out, nil
}

// resolveTracing points each tracing connection manager of a bootstrap at its collector: the
// first endpoint of the named cluster, which must be defined with endpoints. It also records
// the node id the spans carry.
func resolveTracing(b *bootstrapv3.Bootstrap, out *model.Bootstrap) error {
	clusters := map[string]*model.Cluster{}
	for _, c := range out.Clusters {
		clusters[c.Name] = c
	}
	for i, l := range out.Listeners {
		lp := path("static_resources").field("listeners").index(i)
		pl := b.GetStaticResources().GetListeners()[i]
		chains := append([]*model.FilterChain(nil), l.FilterChains...)
		for j, fc := range chains {
			fp := lp.field("filter_chains").index(j).field("filters").index(len(pl.GetFilterChains()[j].GetFilters()) - 1)
			if err := resolveCollector(fp, fc, clusters, out.Node.ID); err != nil {
				return err
			}
		}
		if fc := l.DefaultFilterChain; fc != nil {
			fp := lp.field("default_filter_chain").field("filters").index(len(pl.GetDefaultFilterChain().GetFilters()) - 1)
			if err := resolveCollector(fp, fc, clusters, out.Node.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

func resolveCollector(p path, fc *model.FilterChain, clusters map[string]*model.Cluster, node string) error {
	if fc.HCM == nil || fc.HCM.Tracing == nil {
		return nil
	}
	t := fc.HCM.Tracing
	t.NodeID = node
	cp := p.field("typed_config").field("tracing").field("provider").field("typed_config").
		field("grpc_service").field("envoy_grpc").field("cluster_name")
	c, ok := clusters[t.Provider.CollectorCluster]
	if !ok {
		return cp.errorf("unknown cluster %q", t.Provider.CollectorCluster)
	}
	for _, loc := range c.Localities {
		for _, ep := range loc.Endpoints {
			t.Provider.CollectorAddress = net.JoinHostPort(ep.Address.Host, strconv.Itoa(int(ep.Address.Port)))
			return nil
		}
	}
	return cp.errorf("cluster %q has no endpoints when the config loads (the OTLP collector needs a STATIC or DNS cluster)", t.Provider.CollectorCluster)
}
