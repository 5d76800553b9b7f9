package xdsgen

import (
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const previousHostsName = "envoy.retry_host_predicates.previous_hosts"

// previousHostsConfig is shared by every retry policy: resources are never modified once built.
var previousHostsConfig = typed(&previoushostsv3.PreviousHostsPredicate{})

// A route's retries are its action's retry policy; a retry goes to another endpoint.
func init() {
	register(&feature{name: "retry", order: 210, routeAction: func(a *routev3.RouteAction, r *ir.Route) {
		rt := r.Retry
		if rt == nil {
			return
		}
		rp := &routev3.RetryPolicy{
			RetryOn:              strings.Join(rt.On, ","),
			NumRetries:           wrapperspb.UInt32(rt.NumRetries),
			PerTryTimeout:        optDur(rt.PerTry),
			RetriableStatusCodes: rt.StatusCodes,
			RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
				Name:       previousHostsName,
				ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: previousHostsConfig},
			}},
			HostSelectionRetryMaxAttempts: rt.HostPicks,
		}
		if rt.BackoffBase != nil || rt.BackoffMax != nil {
			rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: optDur(rt.BackoffBase), MaxInterval: optDur(rt.BackoffMax)}
		}
		a.RetryPolicy = rp
	}})
}
