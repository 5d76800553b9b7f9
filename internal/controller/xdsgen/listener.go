package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// Envoy's names for the extensions a listener uses.
const (
	hcmName          = "envoy.filters.network.http_connection_manager"
	tcpProxyName     = "envoy.filters.network.tcp_proxy"
	routerName       = "envoy.filters.http.router"
	tlsInspectorName = "envoy.filters.listener.tls_inspector"
)

// hostEncoder encodes one virtual host of a listener (reusing an earlier encoding when the
// IR is the same).
type hostEncoder func(l *ir.Listener, vh *ir.VirtualHost) *routev3.VirtualHost

// listener encodes l, and its route table when it is sent over RDS.
func listener(l *ir.Listener, host hostEncoder) (*listenerv3.Listener, *routev3.RouteConfiguration) {
	out := &listenerv3.Listener{Name: l.Name, Address: socketAddress(l.Address, l.Port)}
	var httpFilters []*listenerv3.Filter
	var rds *routev3.RouteConfiguration
	if l.HTTP != nil {
		rc := routeConfig(l, host)
		h := connectionManager(l, rc)
		if l.HTTP.RDS {
			rds = rc
		}
		for _, f := range features {
			if f.networkFilters != nil {
				httpFilters = append(httpFilters, f.networkFilters(l)...)
			}
		}
		httpFilters = append(httpFilters, &listenerv3.Filter{Name: hcmName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(h)}})
	}
	inspect := false
	chain := func(fc *ir.FilterChain) *listenerv3.FilterChain {
		c := &listenerv3.FilterChain{Name: fc.Name, Filters: httpFilters}
		if len(fc.ServerNames) > 0 {
			inspect = true
			c.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: fc.ServerNames}
		}
		if fc.TLS != nil {
			inspect = true
			c.TransportSocket = downstreamTLS(fc.TLS)
		}
		if fc.Passthrough != "" {
			c.Filters = []*listenerv3.Filter{{
				Name: tcpProxyName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(&tcpproxyv3.TcpProxy{
					StatPrefix:       "passthrough",
					ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: fc.Passthrough},
				})},
			}}
		}
		return c
	}
	for _, fc := range l.Chains {
		out.FilterChains = append(out.FilterChains, chain(fc))
	}
	if l.DefaultChain != nil {
		out.DefaultFilterChain = chain(l.DefaultChain)
	}
	if inspect {
		// SNI is only known to filter chain matching once tls_inspector has read the ClientHello.
		out.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       tlsInspectorName,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: typed(&tlsinspectorv3.TlsInspector{})},
		}}
	}
	return out, rds
}

// connectionManager is l's HTTP connection manager with the route table rc, inline or named
// for RDS.
func connectionManager(l *ir.Listener, rc *routev3.RouteConfiguration) *hcmv3.HttpConnectionManager {
	hl := l.HTTP
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: l.Name,
		// AUTO also accepts h2c with prior knowledge, so it is only right when HTTP/2 is wanted.
		CodecType: hcmv3.HttpConnectionManager_HTTP1,
		// Hosts in routes are written without ports; a Host header of "a.example.com:8080"
		// must still match "a.example.com".
		StripPortMode: &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
	}
	if hl.Codec == ir.CodecAuto {
		h.CodecType = hcmv3.HttpConnectionManager_AUTO
	}
	if hl.RDS {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{ConfigSource: ads(), RouteConfigName: hl.RouteName}}
	} else {
		h.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	}
	if hl.WebSocket {
		h.UpgradeConfigs = []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}}
	}
	if hl.UseRemoteAddress {
		h.UseRemoteAddress = wrapperspb.Bool(true)
	}
	h.RequestTimeout = optDur(hl.RequestTimeout)
	h.StreamIdleTimeout = optDur(hl.StreamIdleTimeout)
	if hl.IdleTimeout != nil {
		h.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{IdleTimeout: optDur(hl.IdleTimeout)}
	}
	for _, f := range features {
		if f.hcm != nil {
			f.hcm(h, l)
		}
		if f.httpFilters != nil {
			h.HttpFilters = append(h.HttpFilters, f.httpFilters(l)...)
		}
	}
	h.HttpFilters = append(h.HttpFilters, &hcmv3.HttpFilter{
		Name:       routerName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&routerv3.Router{})},
	})
	return h
}
