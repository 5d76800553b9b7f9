package simple

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// Envoy's names for the extensions a listener uses.
const (
	hcmName          = "envoy.filters.network.http_connection_manager"
	connLimitName    = "envoy.filters.network.connection_limit"
	routerName       = "envoy.filters.http.router"
	tlsInspectorName = "envoy.filters.listener.tls_inspector"
	tlsSocketName    = "envoy.transport_sockets.tls"
)

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"1.0": tlsv3.TlsParameters_TLSv1_0,
	"1.1": tlsv3.TlsParameters_TLSv1_1,
	"1.2": tlsv3.TlsParameters_TLSv1_2,
	"1.3": tlsv3.TlsParameters_TLSv1_3,
}

func (t *translator) listener(l *v1alpha1.Listener) *listenerv3.Listener {
	out := &listenerv3.Listener{
		Name:    l.Name,
		Address: socketAddress(l.Address),
	}
	filters := t.networkFilters(l)
	if l.TLS == nil {
		out.FilterChains = []*listenerv3.FilterChain{{Filters: filters}}
		return out
	}

	// SNI is only known to filter chain matching once tls_inspector has read the ClientHello.
	out.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       tlsInspectorName,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: typed(&tlsinspectorv3.TlsInspector{})},
	}}
	// Each certificate with hosts gets a chain matching its SNI names. The certificate without
	// hosts, or else the first, is the default chain, so that clients sending no or unknown SNI
	// still get a certificate rather than a closed connection.
	for i, c := range l.TLS.Certificates {
		chain := &listenerv3.FilterChain{
			Name:            l.Name + "-tls-" + strconv.Itoa(i),
			Filters:         cloneFilters(filters),
			TransportSocket: t.downstreamTLS(l, c),
		}
		if len(c.Hosts) == 0 {
			out.DefaultFilterChain = chain
			continue
		}
		names := make([]string, len(c.Hosts))
		for j, h := range c.Hosts {
			names[j] = strings.ToLower(h)
		}
		chain.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: names}
		out.FilterChains = append(out.FilterChains, chain)
	}
	if out.DefaultFilterChain == nil {
		c := l.TLS.Certificates[0]
		out.DefaultFilterChain = &listenerv3.FilterChain{
			Name:            l.Name + "-tls-default",
			Filters:         cloneFilters(filters),
			TransportSocket: t.downstreamTLS(l, c),
		}
	}
	return out
}

func cloneFilters(fs []*listenerv3.Filter) []*listenerv3.Filter {
	out := make([]*listenerv3.Filter, len(fs))
	for i, f := range fs {
		out[i] = proto.CloneOf(f)
	}
	return out
}

func (t *translator) downstreamTLS(l *v1alpha1.Listener, c v1alpha1.Certificate) *corev3.TransportSocket {
	common := &tlsv3.CommonTlsContext{
		TlsCertificates: []*tlsv3.TlsCertificate{{
			CertificateChain: t.file(c.Cert),
			PrivateKey:       t.file(c.Key),
		}},
		AlpnProtocols: []string{"http/1.1"},
	}
	if l.HTTP2 {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	if v, ok := tlsVersions[l.TLS.MinVersion]; ok {
		common.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: v}
	}
	return &corev3.TransportSocket{
		Name:       tlsSocketName,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.DownstreamTlsContext{CommonTlsContext: common})},
	}
}

// networkFilters is the filter list of every chain of a listener: an optional connection limit,
// then the HTTP connection manager.
func (t *translator) networkFilters(l *v1alpha1.Listener) []*listenerv3.Filter {
	var fs []*listenerv3.Filter
	if l.MaxConnections > 0 {
		fs = append(fs, &listenerv3.Filter{
			Name: connLimitName,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(&connlimitv3.ConnectionLimit{
				StatPrefix:     l.Name,
				MaxConnections: wrapperspb.UInt64(uint64(l.MaxConnections)),
			})},
		})
	}
	return append(fs, &listenerv3.Filter{
		Name:       hcmName,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(t.hcm(l))},
	})
}

func (t *translator) hcm(l *v1alpha1.Listener) *hcmv3.HttpConnectionManager {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: l.Name,
		// AUTO also accepts h2c with prior knowledge, so it is only right when HTTP/2 is wanted.
		CodecType: hcmv3.HttpConnectionManager_HTTP1,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{
			RouteConfig: t.routeConfig(l),
		},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       routerName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&routerv3.Router{})},
		}},
		// Hosts in routes are written without ports; a Host header of "a.example.com:8080"
		// must still match "a.example.com".
		StripPortMode: &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
	}
	if hasFault(l) {
		h.HttpFilters = append([]*hcmv3.HttpFilter{{
			Name:       faultName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&faultv3.HTTPFault{})},
		}}, h.HttpFilters...)
	}
	if l.HTTP2 {
		h.CodecType = hcmv3.HttpConnectionManager_AUTO
	}
	if l.WebSocket {
		h.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	}
	if to := l.Timeouts; to != nil {
		h.RequestTimeout = duration(to.Request)
		h.StreamIdleTimeout = duration(to.StreamIdle)
		if to.Idle != nil {
			h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: duration(to.Idle)}
		}
	}
	h.AccessLog = t.accessLog(l.AccessLog)
	return h
}
