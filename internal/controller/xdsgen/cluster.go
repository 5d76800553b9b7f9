package xdsgen

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// httpOptionsKey is the typed_extension_protocol_options key Envoy reads upstream HTTP options from.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultConnectTimeout is Envoy's own default, written out so the output says what applies.
const defaultConnectTimeout = 5 * time.Second

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"ROUND_ROBIN":   clusterv3.Cluster_ROUND_ROBIN,
	"LEAST_REQUEST": clusterv3.Cluster_LEAST_REQUEST,
	"RING_HASH":     clusterv3.Cluster_RING_HASH,
	"MAGLEV":        clusterv3.Cluster_MAGLEV,
	"RANDOM":        clusterv3.Cluster_RANDOM,
}

// cluster encodes c, with its ClusterLoadAssignment apart for an EDS cluster (nil otherwise).
func cluster(c *ir.Cluster) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	connect := defaultConnectTimeout
	if c.ConnectTimeout != nil {
		connect = c.ConnectTimeout.Duration
	}
	out := &clusterv3.Cluster{
		Name:           c.Name,
		ConnectTimeout: dur(connect),
		LbPolicy:       lbPolicies[c.LB],
	}
	cla := loadAssignment(c)
	if opts := httpOptions(c.Protocol); opts != nil {
		out.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: typed(opts)}
	}
	if c.TLS != nil {
		out.TransportSocket = upstreamTLS(c)
	}
	for _, f := range features {
		if f.cluster != nil {
			f.cluster(out, c)
		}
	}
	switch c.Kind {
	case ir.ClusterEDS:
		out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		out.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()}
		return out, cla
	case ir.ClusterDNS:
		out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	default:
		out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	}
	out.LoadAssignment = cla
	return out, nil
}

func loadAssignment(c *ir.Cluster) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: c.Name}
	for _, l := range c.Localities {
		le := &endpointv3.LocalityLbEndpoints{Priority: l.Priority}
		if l.Zone != "" {
			le.Locality = &corev3.Locality{Zone: l.Zone}
		}
		if l.Weight > 0 {
			le.LoadBalancingWeight = wrapperspb.UInt32(l.Weight)
		}
		for _, e := range l.Endpoints {
			lb := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
				Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address, e.Port)},
			}}
			if e.Weight > 0 {
				lb.LoadBalancingWeight = wrapperspb.UInt32(e.Weight)
			}
			le.LbEndpoints = append(le.LbEndpoints, lb)
		}
		cla.Endpoints = append(cla.Endpoints, le)
	}
	return cla
}

// httpOptions selects the upstream protocol; HTTP/1.1, Envoy's default, needs none.
func httpOptions(protocol string) *httpv3.HttpProtocolOptions {
	switch protocol {
	case ir.ProtocolHTTP2:
		return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		}}
	case ir.ProtocolAuto:
		return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
			},
		}}
	}
	return nil
}
