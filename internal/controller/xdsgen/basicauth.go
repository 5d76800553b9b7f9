package xdsgen

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const basicAuthName = "envoy.filters.http.basic_auth"

// Basic auth is the basic_auth filter, disabled in the chain and enabled per route with the route's users.
func init() {
	register(&feature{
		name: "basicauth", order: 120,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, func(r *ir.Route) bool { return r.BasicAuth != nil }) {
				return nil
			}
			return []*hcmv3.HttpFilter{disabledFilter(basicAuthName, &basicauthv3.BasicAuth{Users: inlineString("")})}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if b := r.BasicAuth; b != nil {
				enableFilter(out, basicAuthName, &basicauthv3.BasicAuthPerRoute{
					Users: inlineString(strings.Join(b.Users, "\n") + "\n"), Realm: b.Realm,
				})
			}
		},
	})
}

func inlineString(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}
