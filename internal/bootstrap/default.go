package bootstrap

import (
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Addresses of the built-in configuration.
const (
	DefaultListenerAddress = "0.0.0.0"
	DefaultListenerPort    = 8080
	DefaultAdminAddress    = "127.0.0.1"
	DefaultAdminPort       = 9901
	DefaultAdminURL        = "http://127.0.0.1:9901/"
)

// welcomePage is what the built-in listener answers; it stays under Envoy's 4 KiB
// direct_response limit.
const welcomePage = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Welcome to Nuncio</title></head>
<body>
<h1>Nuncio is running</h1>
<p>This is the built-in configuration: every request on port 8080 gets this page.</p>
<p>The admin API and dashboard are at <a href="` + DefaultAdminURL + `">` + DefaultAdminURL + `</a>.</p>
<p>Run <code>nuncio run -c nuncio.yaml</code> (or an Envoy bootstrap) to serve your own routes.</p>
</body>
</html>
`

// Default returns the configuration `nuncio run` serves without flags: a listener on
// 0.0.0.0:8080 answering every request with a welcome page, and the admin API on
// 127.0.0.1:9901. Each call returns a new value the caller may modify.
func Default() *bootstrapv3.Bootstrap {
	rc := &routev3.RouteConfiguration{
		Name: "default",
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "default",
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:  "welcome",
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
					Status: 200,
					Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: welcomePage}},
				}},
				ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
					Header:       &corev3.HeaderValue{Key: "content-type", Value: "text/html; charset=utf-8"},
					AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
				}},
			}},
		}},
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "ingress_http",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
		}},
	}
	return &bootstrapv3.Bootstrap{
		Admin: &bootstrapv3.Admin{Address: socketAddress(DefaultAdminAddress, DefaultAdminPort)},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{{
				Name:    "default",
				Address: socketAddress(DefaultListenerAddress, DefaultListenerPort),
				FilterChains: []*listenerv3.FilterChain{{
					Filters: []*listenerv3.Filter{{
						Name:       "envoy.filters.network.http_connection_manager",
						ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
					}},
				}},
			}},
		},
	}
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// mustAny packs a message built in this file; it cannot fail for a valid generated type.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}
