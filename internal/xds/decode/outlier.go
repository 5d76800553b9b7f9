package decode

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var _ = allow(&clusterv3.OutlierDetection{}, "consecutive_5xx", "interval", "base_ejection_time",
	"max_ejection_percent", "enforcing_consecutive_5xx", "enforcing_success_rate",
	"success_rate_minimum_hosts", "success_rate_request_volume", "success_rate_stdev_factor",
	"consecutive_gateway_failure", "enforcing_consecutive_gateway_failure",
	"split_external_local_origin_errors", "consecutive_local_origin_failure",
	"enforcing_consecutive_local_origin_failure", "enforcing_local_origin_success_rate",
	"failure_percentage_threshold", "enforcing_failure_percentage",
	"enforcing_failure_percentage_local_origin", "failure_percentage_minimum_hosts",
	"failure_percentage_request_volume", "max_ejection_time",
	"successful_active_health_check_uneject_host")

// outlierDetection decodes outlier_detection with Envoy's defaults for unset fields.
func outlierDetection(p path, c *clusterv3.Cluster, out *model.Cluster) error {
	o := c.GetOutlierDetection()
	if o == nil {
		return nil
	}
	p = p.field("outlier_detection")
	m := &model.OutlierDetection{SplitExternalLocalOriginErrors: o.GetSplitExternalLocalOriginErrors()}
	var err error
	if m.Interval, err = duration(p.field("interval"), o.GetInterval(), 10*time.Second); err != nil {
		return err
	}
	if m.Interval == 0 {
		return p.field("interval").errorf("must be above 0")
	}
	if m.BaseEjectionTime, err = duration(p.field("base_ejection_time"), o.GetBaseEjectionTime(), 30*time.Second); err != nil {
		return err
	}
	if m.BaseEjectionTime == 0 {
		return p.field("base_ejection_time").errorf("must be above 0")
	}
	if m.MaxEjectionTime, err = duration(p.field("max_ejection_time"), o.GetMaxEjectionTime(), max(300*time.Second, m.BaseEjectionTime)); err != nil {
		return err
	}
	if m.MaxEjectionTime < m.BaseEjectionTime {
		return p.field("max_ejection_time").errorf("must not be below base_ejection_time")
	}
	m.SuccessfulActiveHealthCheckUnejectHost = true
	if v := o.GetSuccessfulActiveHealthCheckUnejectHost(); v != nil {
		m.SuccessfulActiveHealthCheckUnejectHost = v.GetValue()
	}
	type field struct {
		name    string
		v       *wrapperspb.UInt32Value
		dst     *uint32
		def     uint32
		percent bool
	}
	for _, f := range []field{
		{"max_ejection_percent", o.GetMaxEjectionPercent(), &m.MaxEjectionPercent, 10, true},
		{"consecutive_5xx", o.GetConsecutive_5Xx(), &m.Consecutive5xx, 5, false},
		{"enforcing_consecutive_5xx", o.GetEnforcingConsecutive_5Xx(), &m.EnforcingConsecutive5xx, 100, true},
		{"consecutive_gateway_failure", o.GetConsecutiveGatewayFailure(), &m.ConsecutiveGatewayFailure, 5, false},
		{"enforcing_consecutive_gateway_failure", o.GetEnforcingConsecutiveGatewayFailure(), &m.EnforcingConsecutiveGatewayFailure, 0, true},
		{"consecutive_local_origin_failure", o.GetConsecutiveLocalOriginFailure(), &m.ConsecutiveLocalOriginFailure, 5, false},
		{"enforcing_consecutive_local_origin_failure", o.GetEnforcingConsecutiveLocalOriginFailure(), &m.EnforcingConsecutiveLocalOriginFailure, 100, true},
		{"enforcing_success_rate", o.GetEnforcingSuccessRate(), &m.EnforcingSuccessRate, 100, true},
		{"enforcing_local_origin_success_rate", o.GetEnforcingLocalOriginSuccessRate(), &m.EnforcingLocalOriginSuccessRate, 100, true},
		{"success_rate_minimum_hosts", o.GetSuccessRateMinimumHosts(), &m.SuccessRateMinimumHosts, 5, false},
		{"success_rate_request_volume", o.GetSuccessRateRequestVolume(), &m.SuccessRateRequestVolume, 100, false},
		{"success_rate_stdev_factor", o.GetSuccessRateStdevFactor(), &m.SuccessRateStdevFactor, 1900, false},
		{"failure_percentage_threshold", o.GetFailurePercentageThreshold(), &m.FailurePercentageThreshold, 85, true},
		{"enforcing_failure_percentage", o.GetEnforcingFailurePercentage(), &m.EnforcingFailurePercentage, 0, true},
		{"enforcing_failure_percentage_local_origin", o.GetEnforcingFailurePercentageLocalOrigin(), &m.EnforcingFailurePercentageLocalOrigin, 0, true},
		{"failure_percentage_minimum_hosts", o.GetFailurePercentageMinimumHosts(), &m.FailurePercentageMinimumHosts, 5, false},
		{"failure_percentage_request_volume", o.GetFailurePercentageRequestVolume(), &m.FailurePercentageRequestVolume, 50, false},
	} {
		*f.dst = f.def
		if f.v != nil {
			*f.dst = f.v.GetValue()
		}
		if f.percent && *f.dst > 100 {
			return p.field(f.name).errorf("must be at most 100")
		}
	}
	out.OutlierDetection = m
	return nil
}
