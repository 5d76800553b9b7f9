package xdsgen

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const faultName = "envoy.filters.http.fault"

// Faults are the fault filter, in the connection managers of listeners with a faulty route;
// the filter does nothing by itself, each route's faults are its per-route config.
func init() {
	register(&feature{
		name: "fault", order: 100,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, func(r *ir.Route) bool { return r.Fault != nil }) {
				return nil
			}
			return []*hcmv3.HttpFilter{{Name: faultName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&faultv3.HTTPFault{})}}}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if r.Fault != nil {
				perFilter(out, faultName, typed(routeFault(r.Fault)))
			}
		},
	})
}

func routeFault(f *ir.Fault) *faultv3.HTTPFault {
	hf := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		hf.Delay = &faultcommonv3.FaultDelay{
			FaultDelaySecifier: &faultcommonv3.FaultDelay_FixedDelay{FixedDelay: dur(d.Duration.Duration)},
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
	return hf
}
