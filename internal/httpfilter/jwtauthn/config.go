// Package jwtauthn is the envoy.filters.http.jwt_authn filter: it verifies JSON Web Tokens
// (RFC 7519) carried by requests against the keys of configured providers, and lets a
// request through, or answers 401/403, as the requirement of its route says.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication. Providers
// name an issuer, audiences, a JWKS (local_jwks from inline_string, inline_bytes or filename;
// remote_jwks fetched over a cluster with cache_duration, async_fetch and retry_policy),
// where tokens are found (from_headers, from_params, from_cookies; by default the
// Authorization header's Bearer token and the access_token query parameter) and what a
// verified token leaves on the request (forward, forward_payload_header,
// pad_forward_payload_header, claim_to_headers, payload_in_metadata, clear_route_cache).
// Rules select a requirement by route match (prefix, path, safe_regex, headers);
// requirement_map names requirements for the per-route PerRouteConfig.requirement_name.
//
// Fields not implemented are rejected with their path: filter_state_rules, subjects,
// header_in_metadata, normalize_payload_in_metadata, failed_status_in_metadata,
// claim_path, extract_only_without_validation and the route match's other fields.
//
// # Keys and tokens
//
// Tokens are parsed strictly (three unpadded base64url segments, JSON objects, registered
// claims of the right type, no crit) and verified with the standard library: RS, PS, ES
// (256/384/512), EdDSA (Ed25519) and HS (256/384/512, from "oct" keys). Each alg may use only
// keys of its own kind, so an RSA or EC key is never taken as an HMAC secret, and "none" is
// refused. Verified tokens are cached per provider, keyed by the raw token, until they
// expire; a cached token costs a map lookup and the time checks.
//
// A remote JWKS is fetched through the named cluster (any of the gateway's clusters, TLS
// included), in the stream's goroutine the first time, and refreshed in the background
// once cache_duration has passed while streams keep verifying with the keys they have. A
// failed fetch (unreachable, slow past http_uri.timeout, an error status, a body that is not
// a JWKS) keeps the last good keys and is tried again after failed_refetch_duration.
//
// # Stats
//
// http.<stat_prefix>.jwt_authn.<config stat_prefix>allowed, denied, cors_preflight_bypassed,
// jwks_fetch_success, jwks_fetch_failed, jwt_cache_hit and jwt_cache_miss.
package jwtauthn

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name, also the namespace of the metadata it publishes.
const Name = "envoy.filters.http.jwt_authn"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"

// PerRouteTypeURL is the type URL of its typed_per_filter_config.
const PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig"

// Envoy's defaults.
const (
	defaultClockSkew     = 60 * time.Second
	defaultCacheDuration = 10 * time.Minute
	defaultFailedRefetch = time.Second
	defaultCacheSize     = 100
	defaultMaxCachedSize = 4096
	defaultRetryBase     = time.Second
)

func init() { httpfilter.Register(Factory{}) }

// Factory builds jwt_authn configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PerRouteTypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

// Config is a compiled JwtAuthentication. It is immutable; WithScope and WithClusters return
// copies that share the providers (and so their key and token caches).
type Config struct {
	providers                []*provider // sorted by name
	byName                   map[string]*provider
	rules                    []rule
	reqMap                   map[string]*requirement
	bypassCORS, stripFailure bool
	statPrefix               string

	// sanitize lists the headers every provider writes (forward_payload_header,
	// claim_to_headers): they are removed from every request first, so a client cannot
	// forge what only a verified token may say.
	sanitize []string

	stats  *filterStats
	filter *filter // shared by the streams that use the rules
}

// filterStats are Envoy's jwt_authn counters.
type filterStats struct {
	allowed, denied, corsBypassed *stats.Counter
	fetchSuccess, fetchFailed     *stats.Counter
	cacheHit, cacheMiss           *stats.Counter
}

// unscoped counts for a Config used outside a connection manager (tests), which never
// calls WithScope; a private store keeps such counts out of the process's stats.
var unscoped = newFilterStats(stats.NewStore().Scope(""), "")

func newFilterStats(sc *stats.Scope, prefix string) *filterStats {
	p := "jwt_authn." + prefix
	return &filterStats{
		allowed: sc.Counter(p + "allowed"), denied: sc.Counter(p + "denied"),
		corsBypassed: sc.Counter(p + "cors_preflight_bypassed"),
		fetchSuccess: sc.Counter(p + "jwks_fetch_success"), fetchFailed: sc.Counter(p + "jwks_fetch_failed"),
		cacheHit: sc.Counter(p + "jwt_cache_hit"), cacheMiss: sc.Counter(p + "jwt_cache_miss"),
	}
}

// WithScope implements httpfilter.ScopedConfig: the counters live under the connection
// manager's http.<stat_prefix>. scope, as Envoy's.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	out := *c
	out.stats = newFilterStats(sc, c.statPrefix)
	out.filter = &filter{cfg: &out}
	return &out
}

// WithClusters implements hcm.ClusterConfig: remote JWKS providers get the slot of their
// cluster, and those with async_fetch start fetching now rather than on the first request.
func (c *Config) WithClusters(resolve func(string) *cluster.Ref) httpfilter.Config {
	for _, p := range c.providers {
		if r := p.remote; r != nil {
			r.ref.CompareAndSwap(nil, resolve(r.cluster))
			if r.async {
				r.prefetch(c.stats)
			}
		}
	}
	return c
}

// fields lists, per message, the fields NewConfig reads; any other set field is rejected.
var fields = map[protoreflect.FullName][]protoreflect.Name{
	"envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication": {"providers", "rules", "bypass_cors_preflight", "requirement_map", "strip_failure_response", "stat_prefix"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtProvider": {"issuer", "audiences", "require_expiration", "max_lifetime", "forward", "from_headers", "from_params", "from_cookies",
		"forward_payload_header", "pad_forward_payload_header", "payload_in_metadata", "clock_skew_seconds", "jwt_cache_config", "claim_to_headers", "clear_route_cache", "remote_jwks", "local_jwks"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtCacheConfig":        {"jwt_cache_size", "jwt_max_token_size"},
	"envoy.extensions.filters.http.jwt_authn.v3.RemoteJwks":            {"http_uri", "cache_duration", "async_fetch", "retry_policy"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwksAsyncFetch":        {"fast_listener", "failed_refetch_duration"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtHeader":             {"name", "value_prefix"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtClaimToHeader":      {"header_name", "claim_name"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement":        {"provider_name", "provider_and_audiences", "requires_any", "requires_all", "allow_missing_or_failed", "allow_missing"},
	"envoy.extensions.filters.http.jwt_authn.v3.ProviderWithAudiences": {"provider_name", "audiences"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtRequirementOrList":  {"requirements"},
	"envoy.extensions.filters.http.jwt_authn.v3.JwtRequirementAndList": {"requirements"},
	"envoy.extensions.filters.http.jwt_authn.v3.RequirementRule":       {"match", "requires", "requirement_name"},
	"envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig":        {"disabled", "requirement_name"},
	"envoy.config.core.v3.HttpUri":                                     {"uri", "cluster", "timeout"},
	"envoy.config.core.v3.DataSource":                                  {"inline_string", "inline_bytes", "filename"},
	"envoy.config.core.v3.RetryPolicy":                                 {"retry_back_off", "num_retries"},
	"envoy.config.core.v3.BackoffStrategy":                             {"base_interval", "max_interval"},
	"envoy.config.route.v3.RouteMatch":                                 {"prefix", "path", "safe_regex", "case_sensitive", "headers"},
	"envoy.config.route.v3.HeaderMatcher":                              {"name", "exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match", "present_match", "string_match", "invert_match"},
	"envoy.type.matcher.v3.RegexMatcher":                               {"regex", "google_re2"},
	"envoy.type.matcher.v3.RegexMatcher.GoogleRE2":                     {},
	"envoy.type.matcher.v3.StringMatcher":                              {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"},
}

// checkFields rejects any set field the filter does not implement, naming its path.
func checkFields(prefix string, m protoreflect.Message) error {
	allowed, known := fields[m.Descriptor().FullName()]
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		if !known || !slices.Contains(allowed, fd.Name()) {
			err = fmt.Errorf("jwt_authn: %s: not supported", name)
			return false
		}
		if fd.Message() == nil || fd.Message().FullName().Parent() == "google.protobuf" {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkFields(fmt.Sprintf("%s[%d].", name, i), l.Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					err = checkFields(fmt.Sprintf("%s[%q].", name, k.String()), mv.Message())
					return err == nil
				})
			}
		default:
			err = checkFields(name+".", v.Message())
		}
		return err == nil
	})
	return err
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	ja, ok := m.(*jwtv3.JwtAuthentication)
	if !ok {
		return nil, fmt.Errorf("jwt_authn: unexpected config type %T", m)
	}
	if err := checkFields("", ja.ProtoReflect()); err != nil {
		return nil, err
	}
	c := &Config{
		byName: map[string]*provider{}, reqMap: map[string]*requirement{},
		bypassCORS: ja.GetBypassCorsPreflight(), stripFailure: ja.GetStripFailureResponse(),
	}
	if p := ja.GetStatPrefix(); p != "" {
		c.statPrefix = strings.TrimSuffix(p, ".") + "."
	}
	names := make([]string, 0, len(ja.GetProviders()))
	for n := range ja.GetProviders() {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p, err := newProvider(n, ja.GetProviders()[n])
		if err != nil {
			return nil, fmt.Errorf("jwt_authn: providers[%q].%w", n, err)
		}
		c.providers = append(c.providers, p)
		c.byName[n] = p
		for _, h := range p.outputHeaders() {
			if !slices.Contains(c.sanitize, h) {
				c.sanitize = append(c.sanitize, h)
			}
		}
	}
	for n, r := range ja.GetRequirementMap() {
		req, err := c.requirement(fmt.Sprintf("requirement_map[%q]", n), r)
		if err != nil {
			return nil, err
		}
		c.reqMap[n] = req
	}
	for i, r := range ja.GetRules() {
		ru, err := c.rule(fmt.Sprintf("rules[%d]", i), r)
		if err != nil {
			return nil, err
		}
		c.rules = append(c.rules, ru)
	}
	c.stats = unscoped
	c.filter = &filter{cfg: c}
	return c, nil
}

// override is a compiled PerRouteConfig.
type override struct {
	disabled bool
	reqName  string
	last     atomic.Pointer[overrideFilter] // see filterFor
}

// Phases implements httpfilter.Config; an override never makes filters itself.
func (o *override) Phases() httpfilter.Phases { return 0 }

// NewFilter implements httpfilter.Config.
func (o *override) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return httpfilter.PassThrough{}
}

// NewOverride implements httpfilter.Factory: typed_per_filter_config is a PerRouteConfig.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	pr, ok := m.(*jwtv3.PerRouteConfig)
	if !ok {
		return nil, fmt.Errorf("jwt_authn: typed_per_filter_config: unexpected type %T (want PerRouteConfig)", m)
	}
	if err := checkFields("", pr.ProtoReflect()); err != nil {
		return nil, err
	}
	switch r := pr.GetRequirementSpecifier().(type) {
	case *jwtv3.PerRouteConfig_Disabled:
		if !r.Disabled {
			return nil, errors.New("jwt_authn: disabled: must be true")
		}
		return &override{disabled: true}, nil
	case *jwtv3.PerRouteConfig_RequirementName:
		if r.RequirementName == "" {
			return nil, errors.New("jwt_authn: requirement_name: empty")
		}
		return &override{reqName: r.RequirementName}, nil
	}
	return nil, errors.New("jwt_authn: one of disabled, requirement_name required")
}

// loadJWKS reads a local_jwks DataSource.
func loadJWKS(ds *corev3.DataSource) (*keySet, error) {
	var b []byte
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		b = []byte(s.InlineString)
	case *corev3.DataSource_InlineBytes:
		b = s.InlineBytes
	case *corev3.DataSource_Filename:
		var err error
		if b, err = os.ReadFile(s.Filename); err != nil {
			return nil, fmt.Errorf("filename: %v", err)
		}
	default:
		return nil, errors.New("one of inline_string, inline_bytes, filename required")
	}
	return parseJWKS(b)
}

// parseURI splits http_uri.uri into the Host header and path a fetch sends.
func parseURI(raw string) (host, path string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", errors.New("must be an absolute http or https URI")
	}
	path = u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if strings.ContainsFunc(path+u.Host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", "", errors.New("has characters not allowed in a request line")
	}
	return u.Host, path, nil
}

var _ httpfilter.ScopedConfig = (*Config)(nil)
