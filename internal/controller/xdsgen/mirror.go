package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// A route's mirrors are its action's request mirror policies.
func init() {
	register(&feature{name: "mirror", order: 230, routeAction: func(a *routev3.RouteAction, r *ir.Route) {
		for _, m := range r.Mirrors {
			mp := &routev3.RouteAction_RequestMirrorPolicy{Cluster: m.Cluster}
			if m.Percent != nil && *m.Percent < 100 {
				mp.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: percent(m.Percent)}
			}
			a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, mp)
		}
	}})
}

// percent is a 0–100 share as Envoy's FractionalPercent; nil means all.
func percent(p *uint32) *typev3.FractionalPercent {
	n := uint32(100)
	if p != nil {
		n = *p
	}
	return &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_HUNDRED}
}
