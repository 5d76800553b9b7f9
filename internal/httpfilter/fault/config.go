// Package fault is the envoy.filters.http.fault filter: it delays and aborts requests to test
// how clients and services cope with a slow or failing dependency.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.fault.v3.HTTPFault:
//
//   - delay: fixed_delay, or header_delay (the delay in milliseconds comes from the request's
//     x-envoy-fault-delay-request header), with percentage (FractionalPercent; unset is 0%, as
//     in Envoy).
//   - abort: http_status (200–599), grpc_status, or header_abort (the status comes from
//     x-envoy-fault-abort-request, or the gRPC status from x-envoy-fault-abort-grpc-request),
//     with percentage, and response_body.
//   - max_active_faults: faults in progress at once across the process; beyond it requests pass
//     untouched (faults_overflow).
//
// With header_delay or header_abort, x-envoy-fault-delay-request-percentage and
// x-envoy-fault-abort-request-percentage set the numerator of the share of requests faulted;
// the denominator is the configured percentage's and the configured numerator caps it.
//
// A delay runs first, then an abort. A delayed request gets the DI response flag, an aborted
// one FI. A gRPC abort answers HTTP 200 with grpc-status in a trailers-only response.
//
// typed_per_filter_config takes the same message and replaces the filter's config for the
// virtual host or route. Runtime keys, upstream_cluster, headers, downstream_nodes and
// response_rate_limit are rejected: Nuncio has no runtime and does not implement them yet.
//
// # Stats
//
// fault.delays_injected, fault.aborts_injected, fault.faults_overflow (counters) and
// fault.active_faults (gauge).
package fault

import (
	"fmt"
	"sync/atomic"
	"time"

	faultcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.fault"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

func init() { httpfilter.Register(Factory{}) }

// Factory builds fault configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL},
		Status: "stable", Posture: "unknown",
	}
}

// Stats are process-wide: a fault config has no lifetime hook to release per-config stats.
var (
	statScope          = stats.Default.Scope("fault")
	statDelaysInjected = statScope.Counter("delays_injected")
	statAbortsInjected = statScope.Counter("aborts_injected")
	statFaultsOverflow = statScope.Counter("faults_overflow")
	statActiveFaults   = statScope.Gauge("active_faults")
)

// active counts faults in progress, for max_active_faults.
var active atomic.Int64

// Config is a compiled HTTPFault.
type Config struct {
	delay *delay
	abort *abort
	// maxActive caps faults in progress (0: no cap).
	maxActive uint32
	// filter is the one filter every stream of this config shares: it keeps no state.
	filter *filter
}

// percent is a FractionalPercent: numerator out of denominator.
type percent struct{ num, den uint32 }

type delay struct {
	fixed      time.Duration
	fromHeader bool
	pct        percent
}

type abort struct {
	httpStatus int
	grpcStatus int
	isGRPC     bool
	fromHeader bool
	pct        percent
	body       string
}

// supported lists the fields NewConfig reads, per message; any other set field is rejected.
var supported = map[protoreflect.FullName][]protoreflect.Name{
	"envoy.extensions.filters.http.fault.v3.HTTPFault":                {"delay", "abort", "max_active_faults"},
	"envoy.extensions.filters.common.fault.v3.FaultDelay":             {"fixed_delay", "header_delay", "percentage"},
	"envoy.extensions.filters.common.fault.v3.FaultDelay.HeaderDelay": {},
	"envoy.extensions.filters.http.fault.v3.FaultAbort":               {"http_status", "grpc_status", "header_abort", "percentage", "response_body"},
	"envoy.extensions.filters.http.fault.v3.FaultAbort.HeaderAbort":   {},
	"envoy.type.v3.FractionalPercent":                                 {"numerator", "denominator"},
}

func checkFields(prefix string, m protoreflect.Message) error {
	allowed := supported[m.Descriptor().FullName()]
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		ok := false
		for _, a := range allowed {
			if fd.Name() == a {
				ok = true
			}
		}
		name := prefix + string(fd.Name())
		if !ok {
			err = fmt.Errorf("fault: %s: not supported", name)
			return false
		}
		if fd.Message() != nil && fd.Message().FullName().Parent() != "google.protobuf" && !fd.IsList() && !fd.IsMap() {
			err = checkFields(name+".", v.Message())
		}
		return err == nil
	})
	return err
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	f, ok := m.(*faultv3.HTTPFault)
	if !ok {
		return nil, fmt.Errorf("fault: unexpected config type %T", m)
	}
	if err := checkFields("", f.ProtoReflect()); err != nil {
		return nil, err
	}
	c := &Config{}
	c.filter = &filter{cfg: c}
	if d := f.GetDelay(); d != nil {
		dl := &delay{}
		switch spec := d.GetFaultDelaySecifier().(type) {
		case *faultcommonv3.FaultDelay_FixedDelay:
			if err := spec.FixedDelay.CheckValid(); err != nil {
				return nil, fmt.Errorf("fault: delay.fixed_delay: %v", err)
			}
			dl.fixed = spec.FixedDelay.AsDuration()
			if dl.fixed <= 0 {
				return nil, fmt.Errorf("fault: delay.fixed_delay: must be above 0")
			}
		case *faultcommonv3.FaultDelay_HeaderDelay_:
			dl.fromHeader = true
		default:
			return nil, fmt.Errorf("fault: delay: one of fixed_delay, header_delay required")
		}
		var err error
		if dl.pct, err = fraction("delay.percentage", d.GetPercentage()); err != nil {
			return nil, err
		}
		c.delay = dl
	}
	if a := f.GetAbort(); a != nil {
		ab := &abort{body: a.GetResponseBody()}
		switch spec := a.GetErrorType().(type) {
		case *faultv3.FaultAbort_HttpStatus:
			if spec.HttpStatus < 200 || spec.HttpStatus > 599 {
				return nil, fmt.Errorf("fault: abort.http_status: %d out of range [200, 600)", spec.HttpStatus)
			}
			ab.httpStatus = int(spec.HttpStatus)
		case *faultv3.FaultAbort_GrpcStatus:
			ab.isGRPC, ab.grpcStatus = true, int(spec.GrpcStatus)
		case *faultv3.FaultAbort_HeaderAbort_:
			ab.fromHeader = true
		default:
			return nil, fmt.Errorf("fault: abort: one of http_status, grpc_status, header_abort required")
		}
		var err error
		if ab.pct, err = fraction("abort.percentage", a.GetPercentage()); err != nil {
			return nil, err
		}
		c.abort = ab
	}
	if v := f.GetMaxActiveFaults(); v != nil {
		c.maxActive = v.GetValue()
	}
	return c, nil
}

// NewOverride implements httpfilter.Factory: a per-route HTTPFault replaces the filter's.
func (fa Factory) NewOverride(m proto.Message) (httpfilter.Config, error) { return fa.NewConfig(m) }

func fraction(field string, p *typev3.FractionalPercent) (percent, error) {
	if p == nil {
		return percent{0, 100}, nil
	}
	var den uint32
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10000
	case typev3.FractionalPercent_MILLION:
		den = 1000000
	default:
		return percent{}, fmt.Errorf("fault: %s.denominator: %s not supported", field, p.GetDenominator())
	}
	return percent{min(p.GetNumerator(), den), den}, nil
}
