package decode

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's cluster defaults.
const (
	defaultConnectTimeout  = 5 * time.Second
	defaultDNSRefreshRate  = 5 * time.Second
	minDNSRefreshRate      = time.Millisecond
	defaultMaxConnections  = 1024
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

var (
	_ = allow(&clusterv3.Cluster{}, "name", "type", "lb_policy", "connect_timeout",
		"per_connection_buffer_limit_bytes", "load_assignment", "dns_refresh_rate", "dns_lookup_family",
		"respect_dns_ttl", "typed_extension_protocol_options", "http2_protocol_options",
		"circuit_breakers", "transport_socket", "eds_cluster_config")
	_ = allow(&clusterv3.CircuitBreakers{}, "thresholds")
	_ = allow(&upstreamhttpv3.HttpProtocolOptions{}, "explicit_http_config",
		"use_downstream_protocol_config", "common_http_protocol_options")
	_ = allow(&upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{}, "http_protocol_options", "http2_protocol_options")
	_ = allow(&upstreamhttpv3.HttpProtocolOptions_UseDownstreamHttpConfig{}, "http_protocol_options", "http2_protocol_options")
)

// Cluster decodes and validates one cluster with its inline load_assignment.
func Cluster(c *clusterv3.Cluster) (*model.Cluster, error) {
	if err := strict("", c); err != nil {
		return nil, err
	}
	return cluster("", c)
}

var clusterTypes = map[clusterv3.Cluster_DiscoveryType]model.ClusterType{
	clusterv3.Cluster_STATIC:      model.ClusterStatic,
	clusterv3.Cluster_STRICT_DNS:  model.ClusterStrictDNS,
	clusterv3.Cluster_LOGICAL_DNS: model.ClusterLogicalDNS,
	clusterv3.Cluster_EDS:         model.ClusterEDS,
}

var dnsFamilies = map[clusterv3.Cluster_DnsLookupFamily]model.DNSFamily{
	clusterv3.Cluster_AUTO:         model.DNSAuto,
	clusterv3.Cluster_V4_ONLY:      model.DNSV4Only,
	clusterv3.Cluster_V6_ONLY:      model.DNSV6Only,
	clusterv3.Cluster_V4_PREFERRED: model.DNSV4Preferred,
	clusterv3.Cluster_ALL:          model.DNSAll,
}

func cluster(p path, c *clusterv3.Cluster) (*model.Cluster, error) {
	out := &model.Cluster{
		Name:             c.GetName(),
		BufferLimitBytes: defaultBufferLimit,
		RespectDNSTTL:    c.GetRespectDnsTtl(),
		MaxConnections:   defaultMaxConnections,
		Source:           c,
	}
	if out.Name == "" {
		return nil, p.field("name").errorf("required")
	}
	if _, ok := c.GetClusterDiscoveryType().(*clusterv3.Cluster_ClusterType); ok {
		return nil, p.field("cluster_type").errorf("custom cluster types not supported")
	}
	var err error
	if out.Type, err = enum(p.field("type"), c.GetType(), clusterTypes); err != nil {
		return nil, err
	}
	if out.Type == model.ClusterEDS {
		if out.EDS, err = edsConfig(p, c); err != nil {
			return nil, err
		}
	}
	if c.GetEdsClusterConfig() != nil && out.Type != model.ClusterEDS {
		return nil, p.field("eds_cluster_config").errorf("only for type EDS")
	}
	if err := lbConfig(p, c, out); err != nil {
		return nil, err
	}

	if out.ConnectTimeout, err = duration(p.field("connect_timeout"), c.GetConnectTimeout(), defaultConnectTimeout); err != nil {
		return nil, err
	}
	if out.ConnectTimeout == 0 {
		return nil, p.field("connect_timeout").errorf("must be above 0")
	}
	if v := c.GetPerConnectionBufferLimitBytes(); v != nil {
		out.BufferLimitBytes = v.GetValue()
	}
	if out.DNSRefreshRate, err = duration(p.field("dns_refresh_rate"), c.GetDnsRefreshRate(), defaultDNSRefreshRate); err != nil {
		return nil, err
	}
	if out.DNSRefreshRate < minDNSRefreshRate {
		return nil, p.field("dns_refresh_rate").errorf("must be at least 1ms")
	}
	if out.DNSFamily, err = enum(p.field("dns_lookup_family"), c.GetDnsLookupFamily(), dnsFamilies); err != nil {
		return nil, err
	}

	if err := upstreamProtocol(p, c, out); err != nil {
		return nil, err
	}

	if err := circuitBreakers(p, c, out); err != nil {
		return nil, err
	}

	if ts := c.GetTransportSocket(); ts != nil {
		tp := p.field("transport_socket")
		if ts.GetTypedConfig() == nil {
			return nil, tp.field("typed_config").errorf("required")
		}
		m, err := unpack(tp.field("typed_config"), ts.GetTypedConfig())
		if err != nil {
			return nil, err
		}
		utc, ok := m.(*tlsv3.UpstreamTlsContext)
		if !ok {
			return nil, tp.field("typed_config").errorf("transport socket %s not supported", ts.GetTypedConfig().GetTypeUrl())
		}
		if out.TLS, err = upstreamTLS(tp.field("typed_config"), utc); err != nil {
			return nil, err
		}
	}

	if la := c.GetLoadAssignment(); la != nil {
		lp := p.field("load_assignment")
		if out.Localities, err = endpoints(lp, la, out.Type == model.ClusterStatic); err != nil {
			return nil, err
		}
	}
	if err := healthChecks(p, c, out); err != nil {
		return nil, err
	}
	if err := outlierDetection(p, c, out); err != nil {
		return nil, err
	}
	if out.Type == model.ClusterLogicalDNS {
		n := 0
		for _, l := range out.Localities {
			n += len(l.Endpoints)
		}
		if n != 1 {
			return nil, p.field("load_assignment").errorf("LOGICAL_DNS clusters need exactly one endpoint, have %d", n)
		}
	}
	return out, nil
}

// upstreamProtocol reads the protocol options: the HttpProtocolOptions extension, or the
// deprecated cluster-level http2_protocol_options.
func upstreamProtocol(p path, c *clusterv3.Cluster, out *model.Cluster) error {
	out.Protocol = model.UpstreamHTTP1
	out.IdleTimeout = defaultIdleTimeout
	if h2 := c.GetHttp2ProtocolOptions(); h2 != nil {
		if len(c.GetTypedExtensionProtocolOptions()) > 0 {
			return p.field("http2_protocol_options").errorf("cannot be combined with typed_extension_protocol_options")
		}
		out.Protocol = model.UpstreamHTTP2
		var err error
		out.HTTP2, err = http2Options(p.field("http2_protocol_options"), h2)
		return err
	}
	for key, a := range c.GetTypedExtensionProtocolOptions() {
		kp := p.field("typed_extension_protocol_options").key(key)
		if key != httpProtocolOptionsKey {
			return kp.errorf("not supported (only %s)", httpProtocolOptionsKey)
		}
		m, err := unpack(kp, a)
		if err != nil {
			return err
		}
		hpo, ok := m.(*upstreamhttpv3.HttpProtocolOptions)
		if !ok {
			return kp.errorf("type %s does not match the key", a.GetTypeUrl())
		}
		var h2 *corev3.Http2ProtocolOptions
		var h2p path
		switch pc := hpo.GetUpstreamProtocolOptions().(type) {
		case *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_:
			ep := kp.field("explicit_http_config")
			switch e := pc.ExplicitHttpConfig.GetProtocolConfig().(type) {
			case *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
				out.Protocol = model.UpstreamHTTP1
			case *upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
				out.Protocol = model.UpstreamHTTP2
				h2, h2p = e.Http2ProtocolOptions, ep.field("http2_protocol_options")
			default:
				return ep.errorf("one of http_protocol_options, http2_protocol_options required")
			}
		case *upstreamhttpv3.HttpProtocolOptions_UseDownstreamProtocolConfig:
			out.Protocol = model.UpstreamUseDownstream
			h2 = pc.UseDownstreamProtocolConfig.GetHttp2ProtocolOptions()
			h2p = kp.field("use_downstream_protocol_config").field("http2_protocol_options")
		default:
			return kp.errorf("one of explicit_http_config, use_downstream_protocol_config required")
		}
		if out.Protocol != model.UpstreamHTTP1 {
			if out.HTTP2, err = http2Options(h2p, h2); err != nil {
				return err
			}
		}
		cp := kp.field("common_http_protocol_options")
		opts := hpo.GetCommonHttpProtocolOptions()
		if out.IdleTimeout, err = duration(cp.field("idle_timeout"), opts.GetIdleTimeout(), defaultIdleTimeout); err != nil {
			return err
		}
		if v := opts.GetMaxRequestsPerConnection(); v != nil {
			out.MaxRequestsPerConnection = v.GetValue()
		}
		if opts.GetMaxHeadersCount() != nil || opts.GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_ALLOW {
			return cp.errorf("max_headers_count and headers_with_underscores_action not supported upstream yet")
		}
	}
	return nil
}
