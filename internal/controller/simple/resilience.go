package simple

import (
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

const (
	faultName         = "envoy.filters.http.fault"
	previousHostsName = "envoy.retry_host_predicates.previous_hosts"
	// retryHostAttempts is host_selection_retry_max_attempts for simple-config retries: enough
	// picks to find an untried endpoint in small backends.
	retryHostAttempts = 5
	// defaultRetryBase is Envoy's retry_back_off base when only max is given.
	defaultRetryBase = 25 * time.Millisecond
)

// resilience adds a route's retries, mirror and hash policy to its route action.
func resilience(a *routev3.RouteAction, r *v1alpha1.Route) {
	if rt := r.Retries; rt != nil {
		a.RetryPolicy = retryPolicy(rt)
	}
	if m := r.Mirror; m != nil {
		mp := &routev3.RouteAction_RequestMirrorPolicy{Cluster: m.Backend}
		if m.Percent != nil && *m.Percent < 100 {
			mp.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: percent(m.Percent)}
		}
		a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, mp)
	}
	for _, h := range r.Hash {
		a.HashPolicy = append(a.HashPolicy, hashPolicy(h))
	}
}

func retryPolicy(rt *v1alpha1.Retries) *routev3.RetryPolicy {
	on := rt.On
	if len(on) == 0 {
		on = v1alpha1.DefaultRetryOn
	}
	if len(rt.StatusCodes) > 0 {
		on = append(append([]string(nil), on...), "retriable-status-codes")
	}
	rp := &routev3.RetryPolicy{
		RetryOn:                       strings.Join(on, ","),
		NumRetries:                    wrapperspb.UInt32(1),
		PerTryTimeout:                 duration(rt.PerTryTimeout),
		RetriableStatusCodes:          rt.StatusCodes,
		HostSelectionRetryMaxAttempts: retryHostAttempts,
		RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
			Name:       previousHostsName,
			ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: typed(&previoushostsv3.PreviousHostsPredicate{})},
		}},
	}
	if rt.Attempts != nil {
		rp.NumRetries = wrapperspb.UInt32(*rt.Attempts)
	}
	if b := rt.Backoff; b != nil {
		base := durationOr(b.Base, defaultRetryBase)
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: base, MaxInterval: duration(b.Max)}
	}
	return rp
}

func hashPolicy(h v1alpha1.Hash) *routev3.RouteAction_HashPolicy {
	out := &routev3.RouteAction_HashPolicy{}
	switch {
	case h.Header != "":
		out.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: strings.ToLower(h.Header)}}
	case h.Cookie != nil:
		out.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{
			Name: h.Cookie.Name, Ttl: duration(h.Cookie.TTL), Path: h.Cookie.Path,
		}}
	case h.SourceIP:
		out.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}
	default:
		out.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: h.Query}}
	}
	return out
}

// percent is a 0–100 share as Envoy's FractionalPercent; nil means all.
func percent(p *uint32) *typev3.FractionalPercent {
	n := uint32(100)
	if p != nil {
		n = *p
	}
	return &typev3.FractionalPercent{Numerator: n, Denominator: typev3.FractionalPercent_HUNDRED}
}

// routeFault is a route's fault as the fault filter's typed_per_filter_config.
func routeFault(f *v1alpha1.Fault) *anypb.Any {
	hf := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		hf.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: duration(&d.Duration)},
			Percentage:         percent(d.Percent),
		}
	}
	if a := f.Abort; a != nil {
		fa := &faultv3.FaultAbort{Percentage: percent(a.Percent)}
		if a.GRPCStatus != nil {
			fa.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: *a.GRPCStatus}
		} else {
			fa.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(a.Status)}
		}
		hf.Abort = fa
	}
	return typed(hf)
}

// hasFault reports whether any route of the listener injects faults: only then does its
// connection manager get the fault filter.
func hasFault(l *v1alpha1.Listener) bool {
	for i := range l.Routes {
		if l.Routes[i].Fault != nil {
			return true
		}
	}
	return false
}
