package accesslog

import (
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Filter decides whether a finished stream is logged.
type Filter interface {
	Allow(s *httpfilter.Stream, now time.Time) bool
}

// comparison is Envoy's ComparisonFilter with its value resolved: runtime overrides do not
// exist in Nuncio, so a runtime_key always yields default_value.
type comparison struct {
	op    accesslogv3.ComparisonFilter_Op
	value uint64
}

func (c comparison) test(v uint64) bool {
	switch c.op {
	case accesslogv3.ComparisonFilter_GE:
		return v >= c.value
	case accesslogv3.ComparisonFilter_LE:
		return v <= c.value
	case accesslogv3.ComparisonFilter_NE:
		return v != c.value
	}
	return v == c.value
}

func compileComparison(c *accesslogv3.ComparisonFilter) (comparison, error) {
	switch c.GetOp() {
	case accesslogv3.ComparisonFilter_EQ, accesslogv3.ComparisonFilter_GE,
		accesslogv3.ComparisonFilter_LE, accesslogv3.ComparisonFilter_NE:
	default:
		return comparison{}, fmt.Errorf("op: %v not supported", c.GetOp())
	}
	if c.GetValue() == nil {
		return comparison{}, fmt.Errorf("value: required")
	}
	return comparison{op: c.GetOp(), value: uint64(c.GetValue().GetDefaultValue())}, nil
}

type statusFilter struct{ comparison }

func (f statusFilter) Allow(s *httpfilter.Stream, _ time.Time) bool {
	return f.test(uint64(s.Response.Status))
}

// durationFilter compares the stream's total duration in milliseconds, as %DURATION%.
type durationFilter struct{ comparison }

func (f durationFilter) Allow(s *httpfilter.Stream, now time.Time) bool {
	e := env{s: s, now: now}
	return f.test(uint64(millis(e.end().Sub(s.Info.Start))))
}

// flagFilter passes streams with any of the flags, or with any flag at all when none are
// listed.
type flagFilter struct{ mask httpfilter.ResponseFlags }

func (f flagFilter) Allow(s *httpfilter.Stream, _ time.Time) bool {
	if f.mask == 0 {
		return s.Info.ResponseFlags != 0
	}
	return s.Info.ResponseFlags&f.mask != 0
}

type andFilter []Filter

func (f andFilter) Allow(s *httpfilter.Stream, now time.Time) bool {
	for _, c := range f {
		if !c.Allow(s, now) {
			return false
		}
	}
	return true
}

type orFilter []Filter

func (f orFilter) Allow(s *httpfilter.Stream, now time.Time) bool {
	for _, c := range f {
		if c.Allow(s, now) {
			return true
		}
	}
	return false
}

// notHealthCheck passes everything: Nuncio has no health_check HTTP filter, which is what
// marks a request as a health check in Envoy.
type notHealthCheck struct{}

func (notHealthCheck) Allow(*httpfilter.Stream, time.Time) bool { return true }

func compileFilter(f *accesslogv3.AccessLogFilter) (Filter, error) {
	switch v := f.GetFilterSpecifier().(type) {
	case *accesslogv3.AccessLogFilter_StatusCodeFilter:
		c, err := compileComparison(v.StatusCodeFilter.GetComparison())
		if err != nil {
			return nil, fmt.Errorf("status_code_filter.comparison.%w", err)
		}
		return statusFilter{c}, nil
	case *accesslogv3.AccessLogFilter_DurationFilter:
		c, err := compileComparison(v.DurationFilter.GetComparison())
		if err != nil {
			return nil, fmt.Errorf("duration_filter.comparison.%w", err)
		}
		return durationFilter{c}, nil
	case *accesslogv3.AccessLogFilter_ResponseFlagFilter:
		var mask httpfilter.ResponseFlags
		for i, code := range v.ResponseFlagFilter.GetFlags() {
			fl, ok := httpfilter.ParseFlag(code)
			if !ok {
				return nil, fmt.Errorf("response_flag_filter.flags[%d]: unknown response flag %q", i, code)
			}
			mask |= fl
		}
		return flagFilter{mask}, nil
	case *accesslogv3.AccessLogFilter_AndFilter:
		fs, err := compileFilters(v.AndFilter.GetFilters(), "and_filter")
		return andFilter(fs), err
	case *accesslogv3.AccessLogFilter_OrFilter:
		fs, err := compileFilters(v.OrFilter.GetFilters(), "or_filter")
		return orFilter(fs), err
	case *accesslogv3.AccessLogFilter_NotHealthCheckFilter:
		return notHealthCheck{}, nil
	case nil:
		return nil, fmt.Errorf("filter_specifier: one filter required")
	}
	return nil, fmt.Errorf("%T not supported", f.GetFilterSpecifier())
}

func compileFilters(fs []*accesslogv3.AccessLogFilter, field string) ([]Filter, error) {
	if len(fs) < 2 {
		return nil, fmt.Errorf("%s.filters: at least two filters required", field)
	}
	out := make([]Filter, 0, len(fs))
	for i, f := range fs {
		c, err := compileFilter(f)
		if err != nil {
			return nil, fmt.Errorf("%s.filters[%d].%w", field, i, err)
		}
		out = append(out, c)
	}
	return out, nil
}
