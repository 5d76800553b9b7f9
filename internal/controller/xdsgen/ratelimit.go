package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const localRateLimitName = "envoy.filters.http.local_ratelimit"

// A rate limit is the local_ratelimit filter, optional and enabled per route with a token
// bucket per client address. The filter's fractions carry no runtime keys: the data plane has
// no runtime and rejects them.
func init() {
	limited := func(r *ir.Route) bool { return r.RateLimit != nil && r.RateLimit.Tokens > 0 }
	register(&feature{
		name: "ratelimit", order: 140,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, limited) {
				return nil
			}
			return []*hcmv3.HttpFilter{optionalFilter(localRateLimitName, &localratelimitv3.LocalRateLimit{StatPrefix: "local_rate_limit"})}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if limited(r) {
				enableOptional(out, localRateLimitName, localRateLimit(r.RateLimit))
			}
		},
	})
}

// localRateLimit buckets requests per client address with dynamic descriptors.
func localRateLimit(rl *ir.RateLimit) *localratelimitv3.LocalRateLimit {
	bucket := &typev3.TokenBucket{
		MaxTokens:     rl.Burst,
		TokensPerFill: wrapperspb.UInt32(rl.Tokens),
		FillInterval:  durationpb.New(rl.Interval.Duration),
	}
	full := &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}
	return &localratelimitv3.LocalRateLimit{
		StatPrefix:     "local_rate_limit",
		FilterEnabled:  &corev3.RuntimeFractionalPercent{DefaultValue: full},
		FilterEnforced: &corev3.RuntimeFractionalPercent{DefaultValue: full},
		// The default bucket is generous: each client's own bucket is the limit.
		TokenBucket: &typev3.TokenBucket{MaxTokens: 1 << 30, TokensPerFill: wrapperspb.UInt32(1 << 30), FillInterval: durationpb.New(1e9)},
		RateLimits: []*routev3.RateLimit{{Actions: []*routev3.RateLimit_Action{{
			ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}},
		}}}},
		Descriptors: []*ratelimitv3.LocalRateLimitDescriptor{{
			Entries:     []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address"}},
			TokenBucket: bucket,
		}},
		MaxDynamicDescriptors: wrapperspb.UInt32(10000),
	}
}
