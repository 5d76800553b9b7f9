package ingress

import (
	"regexp"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	bufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	localratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// The filters for policies the data plane does not enforce yet are Envoy's standard ones,
// installed in the connection manager disabled and optional, and enabled per route with an
// optional FilterConfig: a data plane that has the filter runs it on exactly the routes that
// asked for it, and one that does not skips it instead of rejecting the listener. The
// translator emits them only for Ingresses the operator allowed (--allow-unenforced) or whose
// policy is not about security.

const extAuthzPrefix = filterExtAuthz + "/"

// optionalFilters lists the connection manager's disabled optional filters, in a fixed order
// (access control first, then rate limits, CORS and buffering), for the policies some route uses.
func (g *xdsGen) optionalFilters() []*hcmv3.HttpFilter {
	var ipf, rl, cors, basic, buffer bool
	var authz []*ir.ExtAuth
	for _, vh := range g.cfg.VirtualHosts {
		for _, r := range vh.Routes {
			ipf = ipf || r.IPFilter != nil
			rl = rl || r.RateLimit != nil && r.RateLimit.Tokens > 0
			cors = cors || r.CORS != nil
			basic = basic || r.BasicAuth != nil
			buffer = buffer || r.MaxRequestBytes > 0
			if a := r.ExtAuth; a != nil && !slices.ContainsFunc(authz, func(b *ir.ExtAuth) bool { return b.Cluster == a.Cluster }) {
				authz = append(authz, a)
			}
		}
	}
	var out []*hcmv3.HttpFilter
	add := func(name string, m proto.Message) {
		out = append(out, &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(m)},
			IsOptional: true, Disabled: true})
	}
	if ipf {
		add(filterRBAC, &rbacv3.RBAC{})
	}
	if basic {
		add(filterBasicAuth, &basicauthv3.BasicAuth{Users: inlineString("")})
	}
	slices.SortFunc(authz, func(a, b *ir.ExtAuth) int { return strings.Compare(a.Cluster, b.Cluster) })
	for _, a := range authz {
		add(extAuthzPrefix+a.Cluster, extAuthz(a))
	}
	if rl {
		add(filterLocalRateLimit, &localratelimitv3.LocalRateLimit{StatPrefix: "local_rate_limit"})
	}
	if cors {
		add(filterCORS, &corsv3.Cors{})
	}
	if buffer {
		add(filterBuffer, &bufferv3.Buffer{MaxRequestBytes: wrapperspb.UInt32(1 << 20)})
	}
	return out
}

func inlineString(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

func extAuthz(a *ir.ExtAuth) *extauthzv3.ExtAuthz {
	resp := &extauthzv3.AuthorizationResponse{}
	if len(a.ResponseHeaders) > 0 {
		lm := &matcherv3.ListStringMatcher{}
		for _, h := range a.ResponseHeaders {
			lm.Patterns = append(lm.Patterns, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: strings.ToLower(h)}, IgnoreCase: true})
		}
		resp.AllowedUpstreamHeaders = lm
	}
	svc := &extauthzv3.HttpService{
		ServerUri: &corev3.HttpUri{
			Uri:              a.URL,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: a.Cluster},
			Timeout:          durationpb.New(5e9),
		},
		AuthorizationResponse: resp,
	}
	if a.RequestRedirect != "" {
		svc.AuthorizationRequest = &extauthzv3.AuthorizationRequest{HeadersToAdd: []*corev3.HeaderValue{{Key: "x-auth-request-redirect", Value: a.RequestRedirect}}}
	}
	return &extauthzv3.ExtAuthz{
		TransportApiVersion: corev3.ApiVersion_V3,
		Services:            &extauthzv3.ExtAuthz_HttpService{HttpService: svc},
	}
}

// perRoute enables the optional filters a route's policies need.
func (g *xdsGen) perRoute(r *ir.Route) map[string]*anypb.Any {
	m := map[string]*anypb.Any{}
	enable := func(name string, cfg proto.Message) {
		m[name] = typed(&routev3.FilterConfig{Config: typed(cfg), IsOptional: true})
	}
	if f := r.IPFilter; f != nil {
		enable(filterRBAC, &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: ipRBAC(f)}})
	}
	if b := r.BasicAuth; b != nil {
		enable(filterBasicAuth, &basicauthv3.BasicAuthPerRoute{Users: inlineString(strings.Join(b.Users, "\n") + "\n")})
	}
	if a := r.ExtAuth; a != nil {
		enable(extAuthzPrefix+a.Cluster, &extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{}}})
	}
	if rl := r.RateLimit; rl != nil && rl.Tokens > 0 {
		enable(filterLocalRateLimit, localRateLimit(rl))
	}
	if c := r.CORS; c != nil {
		enable(filterCORS, corsPolicy(c))
	}
	if r.MaxRequestBytes > 0 {
		enable(filterBuffer, &bufferv3.BufferPerRoute{Override: &bufferv3.BufferPerRoute_Buffer{Buffer: &bufferv3.Buffer{MaxRequestBytes: wrapperspb.UInt32(r.MaxRequestBytes)}}})
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func cidrPrincipals(cidrs []string) []*rbacconfigv3.Principal {
	var out []*rbacconfigv3.Principal
	for _, c := range cidrs {
		addr, bits, _ := strings.Cut(c, "/")
		n := uint32(0)
		for _, ch := range bits {
			n = n*10 + uint32(ch-'0')
		}
		out = append(out, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{
			AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(n),
		}}})
	}
	return out
}

// ipRBAC admits clients in Allow (all when empty) and not in Deny.
func ipRBAC(f *ir.IPFilter) *rbacconfigv3.RBAC {
	var ids []*rbacconfigv3.Principal
	if len(f.Allow) > 0 {
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: cidrPrincipals(f.Allow)}}})
	}
	if len(f.Deny) > 0 {
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_NotId{NotId: &rbacconfigv3.Principal{
			Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: cidrPrincipals(f.Deny)}},
		}}})
	}
	principal := ids[0]
	if len(ids) > 1 {
		principal = &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_AndIds{AndIds: &rbacconfigv3.Principal_Set{Ids: ids}}}
	}
	return &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW,
		Policies: map[string]*rbacconfigv3.Policy{"source-range": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfigv3.Principal{principal},
		}},
	}
}

// localRateLimit buckets requests per client address with dynamic descriptors.
func localRateLimit(rl *ir.RateLimit) *localratelimitv3.LocalRateLimit {
	bucket := &typev3.TokenBucket{
		MaxTokens:     rl.Burst,
		TokensPerFill: wrapperspb.UInt32(rl.Tokens),
		FillInterval:  durationpb.New(rl.Interval.Duration),
	}
	full := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}}
	return &localratelimitv3.LocalRateLimit{
		StatPrefix:     "local_rate_limit",
		FilterEnabled:  &corev3.RuntimeFractionalPercent{DefaultValue: full.DefaultValue, RuntimeKey: "local_rate_limit_enabled"},
		FilterEnforced: &corev3.RuntimeFractionalPercent{DefaultValue: full.DefaultValue, RuntimeKey: "local_rate_limit_enforced"},
		// The default bucket is generous: each client's own bucket is the limit.
		TokenBucket: &typev3.TokenBucket{MaxTokens: 1 << 30, TokensPerFill: wrapperspb.UInt32(1 << 30), FillInterval: durationpb.New(1e9)},
		RateLimits: []*routev3.RateLimit{{Actions: []*routev3.RateLimit_Action{{
			ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{}},
		}}}},
		Descriptors: []*ratelimitv3.LocalRateLimitDescriptor{{
			Entries:     []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address"}},
			TokenBucket: bucket,
		}},
		MaxDynamicDescriptors: wrapperspb.UInt32(10000),
	}
}

func corsPolicy(c *ir.CORS) *corsv3.CorsPolicy {
	p := &corsv3.CorsPolicy{
		AllowMethods:     c.AllowMethods,
		AllowHeaders:     c.AllowHeaders,
		ExposeHeaders:    c.ExposeHeaders,
		MaxAge:           c.MaxAge,
		AllowCredentials: wrapperspb.Bool(c.AllowCredentials),
	}
	for _, o := range c.AllowOrigins {
		sm := &matcherv3.StringMatcher{IgnoreCase: true}
		switch {
		case o == "*":
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}
		case strings.Contains(o, "://*."):
			scheme, rest, _ := strings.Cut(o, "://*.")
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
				Regex: regexpQuote(scheme) + `://[^/]+\.` + regexpQuote(rest),
			}}
		default:
			sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: o}
		}
		p.AllowOriginStringMatch = append(p.AllowOriginStringMatch, sm)
	}
	return p
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
