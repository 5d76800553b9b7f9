package xdsgen

import (
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const corsName = "envoy.filters.http.cors"

// CORS is the cors filter, disabled in the chain and enabled per route with the route's CorsPolicy.
func init() {
	register(&feature{
		name: "cors", order: 150,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, func(r *ir.Route) bool { return r.CORS != nil }) {
				return nil
			}
			return []*hcmv3.HttpFilter{disabledFilter(corsName, &corsv3.Cors{})}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if r.CORS != nil {
				enableFilter(out, corsName, corsPolicy(r.CORS))
			}
		},
	})
}

func corsPolicy(c *ir.CORS) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods:     c.AllowMethods,
		AllowHeaders:     c.AllowHeaders,
		ExposeHeaders:    c.ExposeHeaders,
		MaxAge:           c.MaxAge,
		AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
	}
	for _, o := range c.AllowOrigins {
		sm := &matcherv3.StringMatcher{IgnoreCase: true}
		switch {
		case o == "*":
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}
		case strings.Contains(o, "://*."):
			// A wildcard origin matches any subdomain of the rest.
			scheme, rest, _ := strings.Cut(o, "://*.")
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
				Regex: regexp.QuoteMeta(scheme) + `://[^/]+\.` + regexp.QuoteMeta(rest),
			}}
		default:
			sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: o}
		}
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, sm)
	}
	return p
}
