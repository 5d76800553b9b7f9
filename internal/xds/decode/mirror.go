package decode

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&routev3.RouteAction_RequestMirrorPolicy{}, "cluster", "runtime_fraction", "trace_sampled")
	_ = allow(&corev3.RuntimeFractionalPercent{}, "default_value", "runtime_key")
	_ = allow(&typev3.FractionalPercent{}, "numerator", "denominator")
)

// mirrorPolicies decodes request_mirror_policies. Nuncio has no runtime, so a
// runtime_fraction's default_value is the share mirrored; trace_sampled is accepted and
// has no effect (Nuncio does not sample traces per request yet).
func mirrorPolicies(p path, ms []*routev3.RouteAction_RequestMirrorPolicy) ([]model.MirrorPolicy, error) {
	var out []model.MirrorPolicy
	for i, m := range ms {
		mp := p.index(i)
		if m.GetCluster() == "" {
			return nil, mp.field("cluster").errorf("required")
		}
		mm := model.MirrorPolicy{Cluster: m.GetCluster(), Numerator: 1, Denominator: 1}
		if rf := m.GetRuntimeFraction(); rf != nil {
			num, den, err := fractionalPercent(mp.field("runtime_fraction").field("default_value"), rf.GetDefaultValue())
			if err != nil {
				return nil, err
			}
			mm.Numerator, mm.Denominator = num, den
		}
		out = append(out, mm)
	}
	return out, nil
}

// fractionalPercent converts a FractionalPercent to numerator and denominator; a numerator
// above the denominator means all (Envoy caps it).
func fractionalPercent(p path, f *typev3.FractionalPercent) (uint32, uint32, error) {
	if f == nil {
		return 0, 100, nil
	}
	var den uint32
	switch f.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10000
	case typev3.FractionalPercent_MILLION:
		den = 1000000
	default:
		return 0, 0, p.field("denominator").errorf("%s not supported", f.GetDenominator())
	}
	return min(f.GetNumerator(), den), den, nil
}
