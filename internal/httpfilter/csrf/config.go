// Package csrf is the envoy.filters.http.csrf filter: it refuses state-changing requests
// (POST, PUT, DELETE, PATCH) whose source origin (the Origin header, else the Referer's) is
// neither the request's own host nor one of additional_origins.
//
// # Configuration
//
// typed_config and typed_per_filter_config are both envoy.extensions.filters.http.csrf.v3.
// CsrfPolicy: filter_enabled (required) and shadow_enabled fractions (default_value only;
// runtime keys are rejected) and additional_origins. A per-route policy replaces the filter's.
//
// # Stats
//
// http.<stat_prefix>.csrf.missing_source_origin, request_invalid and request_valid (counters).
package csrf

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	csrfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/csrf/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/matcher"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.csrf"

// TypeURL is the type URL of its typed_config and per-route config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy"

func init() { httpfilter.Register(Factory{}) }

// Factory builds csrf configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

var fields = strict.Fields{
	"envoy.extensions.filters.http.csrf.v3.CsrfPolicy": {"filter_enabled", "shadow_enabled", "additional_origins"},
	"envoy.config.core.v3.RuntimeFractionalPercent":    {"default_value"},
	"envoy.type.v3.FractionalPercent":                  {"numerator", "denominator"},
	"envoy.type.matcher.v3.StringMatcher":              {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"},
	"envoy.type.matcher.v3.RegexMatcher":               {"regex", "google_re2"},
	"envoy.type.matcher.v3.RegexMatcher.GoogleRE2":     {},
}

// Config is a compiled CsrfPolicy.
type Config struct {
	enabled, shadow fraction
	origins         []matcher.String

	stats *csrfStats // nil outside a connection manager
	// bound is a per-route policy's filter for the chain that last used it.
	bound atomic.Pointer[filter]
}

type csrfStats struct{ missingOrigin, invalid, valid *stats.Counter }

// fraction is a FractionalPercent: num out of den.
type fraction struct{ num, den uint32 }

func (f fraction) sample() bool {
	if f.num >= f.den {
		return true
	}
	return f.num > 0 && rand.Uint32N(f.den) < f.num
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	p, ok := m.(*csrfv3.CsrfPolicy)
	if !ok {
		return nil, fmt.Errorf("csrf: unexpected config type %T", m)
	}
	if err := strict.Check("csrf", p, fields); err != nil {
		return nil, err
	}
	if p.GetFilterEnabled() == nil {
		return nil, fmt.Errorf("csrf: filter_enabled: required")
	}
	c := &Config{}
	var err error
	if c.enabled, err = runtimeFraction("filter_enabled", p.GetFilterEnabled()); err != nil {
		return nil, err
	}
	if p.GetShadowEnabled() != nil {
		if c.shadow, err = runtimeFraction("shadow_enabled", p.GetShadowEnabled()); err != nil {
			return nil, err
		}
	}
	for i, sm := range p.GetAdditionalOrigins() {
		m, err := matcher.NewString(sm)
		if err != nil {
			return nil, fmt.Errorf("csrf: additional_origins[%d]: %w", i, err)
		}
		c.origins = append(c.origins, m)
	}
	return c, nil
}

// NewOverride implements httpfilter.Factory: a per-route CsrfPolicy replaces the filter's.
func (f Factory) NewOverride(m proto.Message) (httpfilter.Config, error) { return f.NewConfig(m) }

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	return &Config{enabled: c.enabled, shadow: c.shadow, origins: c.origins, stats: &csrfStats{
		missingOrigin: sc.Counter("csrf.missing_source_origin"),
		invalid:       sc.Counter("csrf.request_invalid"),
		valid:         sc.Counter("csrf.request_valid"),
	}}
}

func runtimeFraction(field string, r *corev3.RuntimeFractionalPercent) (fraction, error) {
	if r.GetRuntimeKey() != "" {
		return fraction{}, fmt.Errorf("csrf: %s.runtime_key: not supported (no runtime)", field)
	}
	d := r.GetDefaultValue()
	if d == nil {
		return fraction{}, fmt.Errorf("csrf: %s.default_value: required", field)
	}
	var den uint32
	switch d.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10000
	case typev3.FractionalPercent_MILLION:
		den = 1000000
	default:
		return fraction{}, fmt.Errorf("csrf: %s.default_value.denominator: %s not supported", field, d.GetDenominator())
	}
	return fraction{min(d.GetNumerator(), den), den}, nil
}

var _ httpfilter.ScopedConfig = (*Config)(nil)
