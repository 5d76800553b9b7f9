// Package rbac is the envoy.filters.http.rbac filter: role-based access control over who sends a
// request (principals: source addresses, the client certificate, headers) and what it asks for
// (permissions: headers, path, method, destination address, port and server name).
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.rbac.v3.RBAC: rules (an
// envoy.config.rbac.v3.RBAC with action ALLOW, DENY or LOG and named policies), shadow_rules
// (evaluated and counted, never enforced), rules_stat_prefix and shadow_rules_stat_prefix.
// typed_per_filter_config takes RBACPerRoute, whose rbac replaces the filter's config on that
// route; an RBACPerRoute without rbac turns the filter off there, as in Envoy.
//
// Policies are evaluated in the lexicographic order of their names; a policy matches when one
// of its permissions and one of its principals match. CIDR principals (remote_ip,
// direct_remote_ip, source_ip) and destination_ip permissions of one list are compiled into one
// sorted interval set, searched in logarithmic time.
//
// Metadata, filter_state, custom and sourced_metadata principals, metadata, matcher,
// uri_template and sourced_metadata permissions, policy conditions, the matcher-based API
// (matcher, shadow_matcher), track_per_rule_stats and audit logging are rejected: no filter
// produces dynamic metadata yet, and there is no CEL.
//
// # Stats
//
// http.<stat_prefix>.rbac.<rules_stat_prefix>allowed and …denied; with LOG, …logged and
// …not_logged; for shadow rules http.<stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed
// and …shadow_denied.
package rbac

import (
	"fmt"
	"sync/atomic"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.rbac"

// Type URLs of its typed_config and of its per-route config.
const (
	TypeURL         = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute"
)

func init() { httpfilter.Register(Factory{}) }

// Factory builds rbac configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PerRouteTypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

var fields = strict.Fields{
	"envoy.extensions.filters.http.rbac.v3.RBAC":         {"rules", "shadow_rules", "rules_stat_prefix", "shadow_rules_stat_prefix"},
	"envoy.extensions.filters.http.rbac.v3.RBACPerRoute": {"rbac"},
	"envoy.config.rbac.v3.RBAC":                          {"action", "policies"},
	"envoy.config.rbac.v3.Policy":                        {"permissions", "principals"},
	"envoy.config.rbac.v3.Permission": {
		"and_rules", "or_rules", "any", "header", "url_path", "destination_ip", "destination_port",
		"destination_port_range", "not_rule", "requested_server_name",
	},
	"envoy.config.rbac.v3.Permission.Set": {"rules"},
	"envoy.config.rbac.v3.Principal": {
		"and_ids", "or_ids", "any", "authenticated", "source_ip", "direct_remote_ip", "remote_ip",
		"header", "url_path", "not_id",
	},
	"envoy.config.rbac.v3.Principal.Set":           {"ids"},
	"envoy.config.rbac.v3.Principal.Authenticated": {"principal_name"},
	"envoy.config.core.v3.CidrRange":               {"address_prefix", "prefix_len"},
	"envoy.config.route.v3.HeaderMatcher": {
		"name", "exact_match", "safe_regex_match", "range_match", "present_match", "prefix_match",
		"suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty",
	},
	"envoy.type.matcher.v3.PathMatcher":            {"path"},
	"envoy.type.matcher.v3.StringMatcher":          {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"},
	"envoy.type.matcher.v3.RegexMatcher":           {"regex", "google_re2"},
	"envoy.type.matcher.v3.RegexMatcher.GoogleRE2": {},
	"envoy.type.v3.Int64Range":                     {"start", "end"},
	"envoy.type.v3.Int32Range":                     {"start", "end"},
}

// Config is a compiled RBAC filter config, or an RBACPerRoute's.
type Config struct {
	rules, shadow             *engine // nil: none
	rulesPrefix, shadowPrefix string

	// bound is the filter of the chain that last used this config (its stats), so that a
	// stream gets a filter without allocating; a chain's own config sets it in WithScope.
	bound atomic.Pointer[filter]
}

type rbacStats struct {
	allowed, denied, logged, notLogged *stats.Counter
	shadowAllowed, shadowDenied        *stats.Counter
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	r, ok := m.(*rbacv3.RBAC)
	if !ok {
		return nil, fmt.Errorf("rbac: unexpected config type %T", m)
	}
	return newConfig(r, "")
}

func newConfig(r *rbacv3.RBAC, p string) (*Config, error) {
	if err := strict.Check("rbac", r, fields); err != nil {
		return nil, err
	}
	c := &Config{rulesPrefix: r.GetRulesStatPrefix(), shadowPrefix: r.GetShadowRulesStatPrefix()}
	var err error
	if r.GetRules() != nil {
		if c.rules, err = compile(p+"rules.", r.GetRules()); err != nil {
			return nil, fmt.Errorf("rbac: %w", err)
		}
	}
	if r.GetShadowRules() != nil {
		if c.shadow, err = compile(p+"shadow_rules.", r.GetShadowRules()); err != nil {
			return nil, fmt.Errorf("rbac: %w", err)
		}
	}
	return c, nil
}

// NewOverride implements httpfilter.Factory: an RBACPerRoute.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	r, ok := m.(*rbacv3.RBACPerRoute)
	if !ok {
		return nil, fmt.Errorf("rbac: per-route config must be an RBACPerRoute, not %T", m)
	}
	if err := strict.Check("rbac", r, fields); err != nil {
		return nil, err
	}
	if r.GetRbac() == nil {
		return &Config{}, nil // no engines: the filter allows everything on this route
	}
	return newConfig(r.GetRbac(), "rbac.")
}

// WithScope implements httpfilter.ScopedConfig: stats under http.<stat_prefix>.rbac.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	rp, sp := "rbac."+c.rulesPrefix, "rbac."+c.shadowPrefix
	st := &rbacStats{
		allowed: sc.Counter(rp + "allowed"), denied: sc.Counter(rp + "denied"),
		logged: sc.Counter(rp + "logged"), notLogged: sc.Counter(rp + "not_logged"),
		shadowAllowed: sc.Counter(sp + "shadow_allowed"), shadowDenied: sc.Counter(sp + "shadow_denied"),
	}
	out := &Config{rules: c.rules, shadow: c.shadow, rulesPrefix: c.rulesPrefix, shadowPrefix: c.shadowPrefix}
	out.bound.Store(&filter{rules: c.rules, shadow: c.shadow, stats: st})
	return out
}

var _ httpfilter.ScopedConfig = (*Config)(nil)
