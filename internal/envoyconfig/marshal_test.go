package envoyconfig

import (
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sampleBootstrap carries one of each typed_config the simple translator emits; the test imports
// their packages, which also registers them so that the Any messages resolve when read back.
func sampleBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	addr := func(host string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "web",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "web",
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    "*",
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "api"}}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})},
		}},
	}
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: addr("127.0.0.1", 9901)},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{{
				Name:    "web",
				Address: addr("::", 8443),
				ListenerFilters: []*listenerv3.ListenerFilter{{
					Name:       "envoy.filters.listener.tls_inspector",
					ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &tlsinspectorv3.TlsInspector{})},
				}},
				FilterChains: []*listenerv3.FilterChain{{
					FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"a.example.com"}},
					Filters: []*listenerv3.Filter{
						{Name: "envoy.filters.network.connection_limit", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &connlimitv3.ConnectionLimit{
							StatPrefix: "web", MaxConnections: wrapperspb.UInt64(1 << 40),
						})}},
						{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}},
					},
					TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{
						TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
							AlpnProtocols: []string{"h2", "http/1.1"},
							TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
						}}),
					}},
				}},
			}},
			Clusters: []*clusterv3.Cluster{{
				Name:                 "api",
				ConnectTimeout:       durationpb.New(1500_000_000),
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
				TypedExtensionProtocolOptions: map[string]*anypb.Any{
					"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, &httpv3.HttpProtocolOptions{
						UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
							ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
						}},
					}),
				},
			}},
		},
	}
}

// TestMarshalYAMLRoundTrip checks that what `nuncio translate --to envoy` prints reads back as
// the same config, Any messages included.
func TestMarshalYAMLRoundTrip(t *testing.T) {
	want := sampleBootstrap(t)
	out, err := MarshalYAML(want)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	got := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(js, got); err != nil {
		t.Fatalf("reading back:\n%s\nerror: %v", out, err)
	}
	if !proto.Equal(got, want) {
		t.Errorf("round trip changed the config:\nwant %s\ngot  %s", protojson.Format(want), protojson.Format(got))
	}
}

func TestMarshalYAMLForm(t *testing.T) {
	out, err := MarshalYAML(sampleBootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	again, err := MarshalYAML(sampleBootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(again) {
		t.Error("two marshals of the same message differ")
	}
	tests := []struct {
		name string
		want string
	}{
		{name: "snake_case field names", want: "static_resources:"},
		{name: "Any expanded with its type", want: "'@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"},
		{name: "durations as strings", want: "connect_timeout: 1.500s"},
		{name: "64-bit integers as strings", want: `max_connections: "1099511627776"`},
		{name: "enums by name", want: "tls_minimum_protocol_version: TLSv1_2"},
		{name: "keys sorted", want: "admin:\n  address:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, out)
			}
		})
	}
	if strings.Index(string(out), "admin:") > strings.Index(string(out), "static_resources:") {
		t.Error("top-level keys are not sorted")
	}
}

func TestMarshalYAMLUnresolvableAny(t *testing.T) {
	b := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{
		Listeners: []*listenerv3.Listener{{
			Name: "x",
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
				Name:       "unknown",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/not.a.Type", Value: []byte{}}},
			}}}},
		}},
	}}
	if _, err := MarshalYAML(b); err == nil || !strings.HasPrefix(err.Error(), "envoyconfig: ") {
		t.Errorf("err = %v, want an envoyconfig error", err)
	}
}
