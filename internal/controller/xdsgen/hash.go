package xdsgen

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A route's hash policy picks the endpoint of hashing load balancers (RING_HASH, MAGLEV).
func init() {
	register(&feature{name: "hash", order: 220, routeAction: func(a *routev3.RouteAction, r *ir.Route) {
		for _, h := range r.Hash {
			a.HashPolicy = append(a.HashPolicy, hashPolicy(h))
		}
	}})
}

func hashPolicy(h ir.Hash) *routev3.RouteAction_HashPolicy {
	hp := &routev3.RouteAction_HashPolicy{}
	switch {
	case h.SourceIP:
		hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}
	case h.Header != "":
		hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h.Header}}
	case h.Query != "":
		hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: h.Query}}
	case h.Cookie != nil:
		hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
			Name: h.Cookie.Name, Path: h.Cookie.Path, Ttl: optDur(h.Cookie.TTL),
		}}
	}
	return hp
}
