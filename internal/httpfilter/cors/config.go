// Package cors is the envoy.filters.http.cors filter: it answers CORS preflight requests and
// adds the Access-Control-* headers to the responses of cross-origin requests, following the
// CorsPolicy of the request's route or virtual host.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.cors.v3.Cors, which has no fields: the policy
// comes from typed_per_filter_config (envoy.extensions.filters.http.cors.v3.CorsPolicy) on the
// route or its virtual host. A route without a policy is not touched. The most specific policy
// (the route's, else the virtual host's) applies whole: Envoy takes each field from the most
// specific level that sets it, which Nuncio does not do yet. The deprecated route-level `cors`
// field is rejected by the route decoder.
//
// filter_enabled and shadow_enabled take a default_value; runtime keys are rejected (Nuncio has
// no runtime).
//
// # Stats
//
// http.<stat_prefix>.cors.origin_valid and origin_invalid (counters), for requests that carry
// an Origin header.
package cors

import (
	"fmt"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/matcher"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.cors"

// Type URLs of its typed_config and of its per-route policy.
const (
	TypeURL       = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
	PolicyTypeURL = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
)

func init() { httpfilter.Register(Factory{}) }

// Factory builds cors configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PolicyTypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

// Config is the filter's chain-level configuration: only the stats scope.
type Config struct {
	stats *corsStats // nil outside a connection manager (unit tests)
}

type corsStats struct {
	originValid, originInvalid *stats.Counter
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	c, ok := m.(*corsv3.Cors)
	if !ok {
		return nil, fmt.Errorf("cors: unexpected config type %T", m)
	}
	if err := strict.Check("cors", c, nil); err != nil {
		return nil, err
	}
	return &Config{}, nil
}

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	return &Config{stats: &corsStats{
		originValid:   sc.Counter("cors.origin_valid"),
		originInvalid: sc.Counter("cors.origin_invalid"),
	}}
}

var policyFields = strict.Fields{
	"envoy.extensions.filters.http.cors.v3.CorsPolicy": {
		"allow_origin_string_match", "allow_methods", "allow_headers", "expose_headers", "max_age",
		"allow_credentials", "filter_enabled", "shadow_enabled", "allow_private_network_access",
		"forward_not_matching_preflights",
	},
	"envoy.type.matcher.v3.StringMatcher":           {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"},
	"envoy.type.matcher.v3.RegexMatcher":            {"regex", "google_re2"},
	"envoy.type.matcher.v3.RegexMatcher.GoogleRE2":  {},
	"envoy.config.core.v3.RuntimeFractionalPercent": {"default_value"},
	"envoy.type.v3.FractionalPercent":               {"numerator", "denominator"},
}

// Policy is a compiled CorsPolicy, a per-route override of the filter.
type Policy struct {
	origins        []matcher.String
	allowMethods   string
	allowHeaders   string
	exposeHeaders  string
	maxAge         string
	credentials    bool
	privateNet     bool
	forwardNoMatch bool
	enabled        fraction
	shadow         fraction

	// bound is this policy's filter for the last chain that used it (its stats), so that a
	// stream gets a filter without allocating.
	bound atomic.Pointer[filter]
}

// fraction is a FractionalPercent: num out of den (always when num >= den).
type fraction struct{ num, den uint32 }

func (f fraction) always() bool { return f.num >= f.den }
func (f fraction) never() bool  { return f.num == 0 }

// NewOverride implements httpfilter.Factory: it compiles a route's or virtual host's
// CorsPolicy.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	p, ok := m.(*corsv3.CorsPolicy)
	if !ok {
		return nil, fmt.Errorf("cors: per-route config must be a CorsPolicy, not %T", m)
	}
	return NewPolicy(p)
}

// NewPolicy compiles p.
func NewPolicy(p *corsv3.CorsPolicy) (*Policy, error) {
	if err := strict.Check("cors", p, policyFields); err != nil {
		return nil, err
	}
	out := &Policy{
		allowMethods: p.GetAllowMethods(), allowHeaders: p.GetAllowHeaders(),
		exposeHeaders: p.GetExposeHeaders(), maxAge: p.GetMaxAge(),
		credentials:    p.GetAllowCredentials().GetValue(),
		privateNet:     p.GetAllowPrivateNetworkAccess().GetValue(),
		forwardNoMatch: p.GetForwardNotMatchingPreflights() == nil || p.GetForwardNotMatchingPreflights().GetValue(),
		enabled:        fraction{1, 1},
	}
	for i, sm := range p.GetAllowOriginStringMatch() {
		m, err := matcher.NewString(sm)
		if err != nil {
			return nil, fmt.Errorf("cors: allow_origin_string_match[%d]: %w", i, err)
		}
		out.origins = append(out.origins, m)
	}
	for _, h := range []struct{ field, v string }{
		{"allow_methods", out.allowMethods}, {"allow_headers", out.allowHeaders},
		{"expose_headers", out.exposeHeaders}, {"max_age", out.maxAge},
	} {
		if strings.ContainsAny(h.v, "\r\n\x00") {
			return nil, fmt.Errorf("cors: %s: must not contain CR, LF or NUL", h.field)
		}
	}
	var err error
	if p.GetFilterEnabled() != nil {
		if out.enabled, err = runtimeFraction("filter_enabled", p.GetFilterEnabled()); err != nil {
			return nil, err
		}
	}
	if p.GetShadowEnabled() != nil {
		if out.shadow, err = runtimeFraction("shadow_enabled", p.GetShadowEnabled()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func runtimeFraction(field string, r *corev3.RuntimeFractionalPercent) (fraction, error) {
	if r.GetRuntimeKey() != "" {
		return fraction{}, fmt.Errorf("cors: %s.runtime_key: not supported (no runtime)", field)
	}
	d := r.GetDefaultValue()
	if d == nil {
		return fraction{}, fmt.Errorf("cors: %s.default_value: required", field)
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
		return fraction{}, fmt.Errorf("cors: %s.default_value.denominator: %s not supported", field, d.GetDenominator())
	}
	return fraction{min(d.GetNumerator(), den), den}, nil
}
