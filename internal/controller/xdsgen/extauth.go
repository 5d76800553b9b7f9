package xdsgen

import (
	"net/url"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// extAuthzPrefix starts the name of an ext_authz filter: there is one per authorization
// service, named after its cluster.
const extAuthzPrefix = "envoy.filters.http.ext_authz/"

// External authorization is an ext_authz filter per authorization service, disabled in the
// chain and enabled on the routes that use that service. It is not optional: a data plane
// without the filter must reject the listener rather than serve the routes unchecked.
func init() {
	register(&feature{
		name: "extauth", order: 130,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			var authz []*ir.ExtAuth
			l.Routes(func(r *ir.Route) {
				if a := r.ExtAuth; a != nil && !slices.ContainsFunc(authz, func(b *ir.ExtAuth) bool { return b.Cluster == a.Cluster }) {
					authz = append(authz, a)
				}
			})
			slices.SortFunc(authz, func(a, b *ir.ExtAuth) int { return strings.Compare(a.Cluster, b.Cluster) })
			var out []*hcmv3.HttpFilter
			for _, a := range authz {
				out = append(out, &hcmv3.HttpFilter{Name: extAuthzPrefix + a.Cluster,
					ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(extAuthz(a))}, Disabled: true})
			}
			return out
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if a := r.ExtAuth; a != nil {
				perFilter(out, extAuthzPrefix+a.Cluster, typed(&routev3.FilterConfig{Config: typed(&extauthzv3.ExtAuthzPerRoute{
					Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{}},
				})}))
			}
		},
	})
}

func extAuthz(a *ir.ExtAuth) *extauthzv3.ExtAuthz {
	resp := &extauthzv3.AuthorizationResponse{}
	if len(a.ResponseHeaders) > 0 {
		lm := &matcherv3.ListStringMatcher{}
		for _, h := range a.ResponseHeaders {
			lm.Patterns = append(lm.Patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: strings.ToLower(h)}, IgnoreCase: true})
		}
		resp.AllowedUpstreamHeaders = lm
	}
	// ingress-nginx sends the check to the URL as it is, not to the client's path behind it.
	path := "/"
	if u, err := url.Parse(a.URL); err == nil {
		path = u.RequestURI()
	}
	svc := &extauthzv3.HttpService{
		PathOverride: path,
		ServerUri: &corev3.HttpUri{
			Uri:              a.URL,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: a.Cluster},
			Timeout:          durationpb.New(5e9),
		},
		AuthorizationResponse: resp,
	}
	if a.RequestRedirect != "" {
		svc.AuthorizationRequest = &extauthzv3.AuthorizationRequest{HeadersToAdd: []*corev3.HeaderValue{{Key: "x-auth-request-redirect", Value: a.RequestRedirect}}}
	}
	return &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services:            &extauthzv3.ExtAuthz_HttpService{HttpService: svc},
	}
}
