package simple

import (
	"net"
	"net/netip"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// httpOptionsKey is the typed_extension_protocol_options key Envoy reads upstream HTTP options from.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultConnectTimeout is Envoy's own default, written out so the output says what applies.
const defaultConnectTimeout = 5 * time.Second

func (t *translator) cluster(b *v1alpha1.Backend) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:           b.Name,
		ConnectTimeout: durationOr(b.ConnectTimeout, defaultConnectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{
			Type: clusterv3.Cluster_STATIC,
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: b.Name},
	}
	var groups []*endpointv3.LocalityLbEndpoints // by priority
	for _, e := range b.Endpoints {
		if host, _, _ := net.SplitHostPort(e.Address); !isIP(host) {
			// One name among the endpoints is enough to need DNS; STRICT_DNS also takes IP
			// literals, so the others keep working.
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		}
		lb := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address)},
		}}
		if e.Weight > 0 {
			lb.LoadBalancingWeight = wrapperspb.UInt32(e.Weight)
		}
		for uint32(len(groups)) <= e.Priority {
			groups = append(groups, &endpointv3.LocalityLbEndpoints{Priority: uint32(len(groups))})
		}
		groups[e.Priority].LbEndpoints = append(groups[e.Priority].LbEndpoints, lb)
	}
	c.LoadAssignment.Endpoints = groups

	if opts := httpOptions(b.Protocol); opts != nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: typed(opts)}
	}
	if b.TLS != nil {
		c.TransportSocket = t.upstreamTLS(b)
	}
	upstreamResilience(c, b)
	return c
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// httpOptions selects the upstream protocol; HTTP/1.1, Envoy's default, needs none.
func httpOptions(protocol string) *httpv3.HttpProtocolOptions {
	switch protocol {
	case "http2":
		return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		}}
	case "auto":
		return &httpv3.HttpProtocolOptions{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpv3.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &corev3.Http1ProtocolOptions{},
				Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
			},
		}}
	}
	return nil
}

func (t *translator) upstreamTLS(b *v1alpha1.Backend) *corev3.TransportSocket {
	cfg := b.TLS
	sni := cfg.SNI
	if sni == "" {
		if host, _, _ := net.SplitHostPort(b.Endpoints[0].Address); !isIP(host) {
			sni = host
		}
	}
	common := &tlsv3.CommonTlsContext{}
	// Envoy verifies nothing without a validation context, unlike Go's TLS client; default to
	// the system roots and the SNI name so that "tls: {}" is safe.
	if !cfg.InsecureSkipVerify {
		vc := &tlsv3.CertificateValidationContext{}
		if cfg.CA != "" {
			vc.TrustedCa = t.file(cfg.CA)
		} else {
			vc.SystemRootCerts = &tlsv3.CertificateValidationContext_SystemRootCerts{}
		}
		if sni != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: sni}},
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	if cfg.Cert != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: t.file(cfg.Cert),
			PrivateKey:       t.file(cfg.Key),
		}}
	}
	// A backend serving both versions picks from ALPN. With "auto" the version depends on the
	// client, so ALPN is left to Envoy, which offers each connection pool's own protocol.
	if b.Protocol == "http2" {
		common.AlpnProtocols = []string{"h2"}
	}
	return &corev3.TransportSocket{
		Name: tlsSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{
			Sni:              sni,
			CommonTlsContext: common,
		})},
	}
}
