package decode

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritemplatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's route defaults.
const (
	defaultRouteTimeout       = 15 * time.Second
	defaultMaxDirectBodyBytes = 4096
	uriTemplateMatchName      = "envoy.path.match.uri_template.uri_template_match_config"
)

var (
	_ = allow(&routev3.RouteConfiguration{}, "name", "virtual_hosts", "request_headers_to_add",
		"request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
		"validate_clusters", "max_direct_response_body_size_bytes")
	_ = allow(&routev3.VirtualHost{}, "name", "domains", "routes", "request_headers_to_add",
		"request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
		"typed_per_filter_config", "retry_policy", "include_request_attempt_count",
		"include_attempt_count_in_response", "per_request_buffer_limit_bytes")
	_ = allowOpaque(&routev3.VirtualHost{}, "typed_per_filter_config")
	_ = allow(&routev3.Route{}, "name", "match", "route", "redirect", "direct_response",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add",
		"response_headers_to_remove", "typed_per_filter_config", "per_request_buffer_limit_bytes")
	_ = allowOpaque(&routev3.Route{}, "typed_per_filter_config")
	_ = allow(&routev3.FilterConfig{}, "config", "is_optional", "disabled")
	_ = allowOpaque(&routev3.FilterConfig{}, "config")
	_ = allow(&routev3.RouteMatch{}, "prefix", "path", "safe_regex", "path_separated_prefix",
		"path_match_policy", "case_sensitive", "headers", "query_parameters")
	_ = allow(&corev3.TypedExtensionConfig{}, "name", "typed_config")
	_ = allow(&uritemplatev3.UriTemplateMatchConfig{}, "path_template")
	_ = allow(&routev3.HeaderMatcher{}, "name", "exact_match", "safe_regex_match", "range_match",
		"present_match", "prefix_match", "suffix_match", "contains_match", "string_match",
		"invert_match", "treat_missing_header_as_empty")
	_ = allow(&typev3.Int64Range{}, "start", "end")
	_ = allow(&routev3.QueryParameterMatcher{}, "name", "string_match", "present_match")
	_ = allow(&matcherv3.RegexMatcher{}, "regex")
	_ = allow(&matcherv3.RegexMatchAndSubstitute{}, "pattern", "substitution")
	_ = allow(&routev3.RouteAction{}, "cluster", "cluster_header", "weighted_clusters",
		"cluster_not_found_response_code", "prefix_rewrite", "regex_rewrite", "host_rewrite_literal",
		"auto_host_rewrite", "timeout", "idle_timeout", "upgrade_configs", "retry_policy",
		"hash_policy", "request_mirror_policies", "max_stream_duration", "priority")
	_ = allow(&routev3.RouteAction_MaxStreamDuration{}, "max_stream_duration", "grpc_timeout_header_max",
		"grpc_timeout_header_offset")
	_ = allow(&routev3.WeightedCluster{}, "clusters")
	_ = allow(&routev3.WeightedCluster_ClusterWeight{}, "name", "weight", "request_headers_to_add",
		"request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove")
	_ = allow(&routev3.RouteAction_UpgradeConfig{}, "upgrade_type", "enabled")
	_ = allow(&routev3.RedirectAction{}, "https_redirect", "scheme_redirect", "host_redirect",
		"port_redirect", "path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query")
	_ = allow(&routev3.DirectResponseAction{}, "status", "body")
	_ = allow(&corev3.HeaderValueOption{}, "header", "append", "append_action", "keep_empty_value")
	_ = allow(&corev3.HeaderValue{}, "key", "value", "raw_value")
)

// RouteConfig decodes a route table delivered on its own (RDS): by Envoy's default its
// cluster references are resolved at request time, unless validate_clusters says otherwise.
func RouteConfig(rc *routev3.RouteConfiguration, reg *httpfilter.Registry) (*model.RouteConfig, error) {
	if err := strict("", rc); err != nil {
		return nil, err
	}
	return routeConfig("", rc, reg, false)
}

func routeConfig(p path, rc *routev3.RouteConfiguration, reg *httpfilter.Registry, validateClusters bool) (*model.RouteConfig, error) {
	out, maxBody, err := routeConfigHead(p, rc, validateClusters)
	if err != nil {
		return nil, err
	}
	vhosts := make([]*model.VirtualHost, 0, len(rc.GetVirtualHosts()))
	for i, vh := range rc.GetVirtualHosts() {
		v, err := virtualHost(p.field("virtual_hosts").index(i), vh, reg, maxBody)
		if err != nil {
			return nil, err
		}
		vhosts = append(vhosts, v)
	}
	if err := addVirtualHosts(p, out, vhosts); err != nil {
		return nil, err
	}
	return out, nil
}

// routeConfigHead decodes what a route configuration says beside its virtual hosts, and
// returns the limit on direct response bodies its virtual hosts are decoded with.
func routeConfigHead(p path, rc *routev3.RouteConfiguration, validateClusters bool) (*model.RouteConfig, uint32, error) {
	out := &model.RouteConfig{Name: rc.GetName(), ValidateClusters: validateClusters, Source: rc}
	if v := rc.GetValidateClusters(); v != nil {
		out.ValidateClusters = v.GetValue()
	}
	maxBody := uint32(defaultMaxDirectBodyBytes)
	if v := rc.GetMaxDirectResponseBodySizeBytes(); v != nil {
		maxBody = v.GetValue()
	}
	var err error
	if out.Headers, err = headerMutation(p, rc.GetRequestHeadersToAdd(), rc.GetRequestHeadersToRemove(),
		rc.GetResponseHeadersToAdd(), rc.GetResponseHeadersToRemove()); err != nil {
		return nil, 0, err
	}
	return out, maxBody, nil
}

// addVirtualHosts sets the decoded virtual hosts of out, checking that no domain is claimed
// twice.
func addVirtualHosts(p path, out *model.RouteConfig, vhosts []*model.VirtualHost) error {
	domains := map[string]int{}
	for i, v := range vhosts {
		vp := p.field("virtual_hosts").index(i)
		for j, d := range v.Domains {
			// Envoy refuses a domain claimed twice: which virtual host wins would be arbitrary.
			if k, dup := domains[d]; dup {
				if k == i {
					return vp.field("domains").index(j).errorf("duplicate domain %q", d)
				}
				return vp.field("domains").index(j).errorf("domain %q already used by virtual_hosts[%d]", d, k)
			}
			domains[d] = i
		}
	}
	out.VirtualHosts = vhosts
	return nil
}

func virtualHost(p path, vh *routev3.VirtualHost, reg *httpfilter.Registry, maxBody uint32) (*model.VirtualHost, error) {
	out := &model.VirtualHost{Name: vh.GetName()}
	if out.Name == "" {
		return nil, p.field("name").errorf("required")
	}
	if len(vh.GetDomains()) == 0 {
		return nil, p.field("domains").errorf("at least one domain required")
	}
	for i, d := range vh.GetDomains() {
		if d == "" || strings.ContainsAny(d, " \t\r\n/") {
			return nil, p.field("domains").index(i).errorf("%q is not a domain", d)
		}
		out.Domains = append(out.Domains, strings.ToLower(d))
	}
	var err error
	if out.Headers, err = headerMutation(p, vh.GetRequestHeadersToAdd(), vh.GetRequestHeadersToRemove(),
		vh.GetResponseHeadersToAdd(), vh.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	if out.TypedPerFilterConfig, err = perFilterConfig(p.field("typed_per_filter_config"), vh.GetTypedPerFilterConfig(), reg); err != nil {
		return nil, err
	}
	if out.RetryPolicy, err = retryPolicy(p.field("retry_policy"), vh.GetRetryPolicy()); err != nil {
		return nil, err
	}
	out.IncludeRequestAttemptCount = vh.GetIncludeRequestAttemptCount()
	out.IncludeAttemptCountInResponse = vh.GetIncludeAttemptCountInResponse()
	if v := vh.GetPerRequestBufferLimitBytes(); v != nil {
		n := v.GetValue()
		out.PerRequestBufferLimitBytes = &n
	}
	for i, r := range vh.GetRoutes() {
		rt, err := route(p.field("routes").index(i), r, reg, maxBody)
		if err != nil {
			return nil, err
		}
		out.Routes = append(out.Routes, rt)
	}
	return out, nil
}

func route(p path, r *routev3.Route, reg *httpfilter.Registry, maxBody uint32) (*model.Route, error) {
	out := &model.Route{Name: r.GetName()}
	var err error
	if out.Match, err = routeMatch(p.field("match"), r.GetMatch()); err != nil {
		return nil, err
	}
	switch a := r.GetAction().(type) {
	case *routev3.Route_Route:
		out.Route, err = routeAction(p.field("route"), a.Route, out.Match.PathKind)
	case *routev3.Route_Redirect:
		out.Redirect, err = redirectAction(p.field("redirect"), a.Redirect)
	case *routev3.Route_DirectResponse:
		out.DirectResponse, err = directResponse(p.field("direct_response"), a.DirectResponse, maxBody)
	default:
		err = p.errorf("one of route, redirect or direct_response required")
	}
	if err != nil {
		return nil, err
	}
	if out.Headers, err = headerMutation(p, r.GetRequestHeadersToAdd(), r.GetRequestHeadersToRemove(),
		r.GetResponseHeadersToAdd(), r.GetResponseHeadersToRemove()); err != nil {
		return nil, err
	}
	if out.TypedPerFilterConfig, err = perFilterConfig(p.field("typed_per_filter_config"), r.GetTypedPerFilterConfig(), reg); err != nil {
		return nil, err
	}
	if v := r.GetPerRequestBufferLimitBytes(); v != nil {
		n := v.GetValue()
		out.PerRequestBufferLimitBytes = &n
	}
	return out, nil
}

func routeMatch(p path, m *routev3.RouteMatch) (model.RouteMatch, error) {
	var out model.RouteMatch
	if m == nil {
		return out, p.errorf("required")
	}
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.PathKind, out.Path = model.PathPrefix, ps.Prefix
	case *routev3.RouteMatch_Path:
		out.PathKind, out.Path = model.PathExact, ps.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := regex(p.field("safe_regex"), ps.SafeRegex)
		if err != nil {
			return out, err
		}
		out.PathKind, out.Path = model.PathRegex, re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		sp := ps.PathSeparatedPrefix
		// Envoy's own rule: a non-empty path with no query or fragment, not ending in '/'.
		if len(sp) < 2 || !strings.HasPrefix(sp, "/") || strings.HasSuffix(sp, "/") || strings.ContainsAny(sp, "?#") {
			return out, p.field("path_separated_prefix").errorf("%q: want /segments without a trailing '/', '?' or '#'", sp)
		}
		out.PathKind, out.Path = model.PathSeparatedPrefix, sp
	case *routev3.RouteMatch_PathMatchPolicy:
		tp := p.field("path_match_policy").field("typed_config")
		if ps.PathMatchPolicy.GetTypedConfig() == nil {
			return out, tp.errorf("required")
		}
		msg, err := unpack(tp, ps.PathMatchPolicy.GetTypedConfig())
		if err != nil {
			return out, err
		}
		cfg, ok := msg.(*uritemplatev3.UriTemplateMatchConfig)
		if !ok {
			return out, tp.errorf("%s not supported (only %s)", ps.PathMatchPolicy.GetTypedConfig().GetTypeUrl(), uriTemplateMatchName)
		}
		if err := uriTemplate(cfg.GetPathTemplate()); err != nil {
			return out, tp.field("path_template").errorf("%q: %v", cfg.GetPathTemplate(), err)
		}
		out.PathKind, out.Path = model.PathTemplate, cfg.GetPathTemplate()
	default:
		return out, p.errorf("one of prefix, path, safe_regex, path_separated_prefix, path_match_policy required")
	}
	if v := m.GetCaseSensitive(); v != nil {
		out.CaseInsensitive = !v.GetValue()
	}
	for i, h := range m.GetHeaders() {
		hm, err := headerMatcher(p.field("headers").index(i), h)
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qp := p.field("query_parameters").index(i)
		if q.GetName() == "" {
			return out, qp.field("name").errorf("required")
		}
		qm := model.QueryParameterMatcher{Name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_StringMatch:
			sm, err := stringMatcher(qp.field("string_match"), s.StringMatch)
			if err != nil {
				return out, err
			}
			qm.String = &sm
		case *routev3.QueryParameterMatcher_PresentMatch:
			qm.Present = s.PresentMatch
			if !qm.Present {
				return out, qp.field("present_match").errorf("must be true (use invert on a header match for absence)")
			}
		default:
			// No specifier: Envoy matches on presence.
			qm.Present = true
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out, nil
}

func headerMatcher(p path, h *routev3.HeaderMatcher) (model.HeaderMatcher, error) {
	out := model.HeaderMatcher{
		Name:                strings.ToLower(h.GetName()),
		Invert:              h.GetInvertMatch(),
		TreatMissingAsEmpty: h.GetTreatMissingHeaderAsEmpty(),
	}
	if !validHeaderName(out.Name, true) {
		return out, p.field("name").errorf("%q is not a header name", h.GetName())
	}
	nonEmpty := func(field, v string) error {
		if v == "" {
			return p.field(field).errorf("must not be empty")
		}
		return nil
	}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		out.String = model.StringMatcher{Kind: model.StringExact, Value: s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		out.String, err = model.StringMatcher{Kind: model.StringPrefix, Value: s.PrefixMatch}, nonEmpty("prefix_match", s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		out.String, err = model.StringMatcher{Kind: model.StringSuffix, Value: s.SuffixMatch}, nonEmpty("suffix_match", s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		out.String, err = model.StringMatcher{Kind: model.StringContains, Value: s.ContainsMatch}, nonEmpty("contains_match", s.ContainsMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		out.String.Kind = model.StringRegex
		out.String.Value, err = regex(p.field("safe_regex_match"), s.SafeRegexMatch)
	case *routev3.HeaderMatcher_StringMatch:
		out.String, err = stringMatcher(p.field("string_match"), s.StringMatch)
	case *routev3.HeaderMatcher_RangeMatch:
		out.Kind, out.RangeStart, out.RangeEnd = model.HeaderRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
		if out.RangeStart >= out.RangeEnd {
			err = p.field("range_match").errorf("start %d must be below end %d", out.RangeStart, out.RangeEnd)
		}
	case *routev3.HeaderMatcher_PresentMatch:
		out.Kind, out.Present = model.HeaderPresent, s.PresentMatch
	default:
		// No specifier: Envoy matches when the header is present.
		out.Kind, out.Present = model.HeaderPresent, true
	}
	return out, err
}

func stringMatcher(p path, m *matcherv3.StringMatcher) (model.StringMatcher, error) {
	out := model.StringMatcher{IgnoreCase: m.GetIgnoreCase()}
	switch s := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		out.Kind, out.Value = model.StringExact, s.Exact
	case *matcherv3.StringMatcher_Prefix:
		out.Kind, out.Value = model.StringPrefix, s.Prefix
	case *matcherv3.StringMatcher_Suffix:
		out.Kind, out.Value = model.StringSuffix, s.Suffix
	case *matcherv3.StringMatcher_Contains:
		out.Kind, out.Value = model.StringContains, s.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		if out.IgnoreCase {
			return out, p.field("ignore_case").errorf("has no effect for safe_regex (use (?i))")
		}
		re, err := regex(p.field("safe_regex"), s.SafeRegex)
		if err != nil {
			return out, err
		}
		out.Kind, out.Value = model.StringRegex, re
	default:
		return out, p.errorf("one of exact, prefix, suffix, contains, safe_regex required")
	}
	if out.Kind != model.StringExact && out.Value == "" {
		return out, p.errorf("empty pattern")
	}
	return out, nil
}

// regex checks an RE2 pattern; Go's regexp implements RE2 syntax.
func regex(p path, m *matcherv3.RegexMatcher) (string, error) {
	if m.GetRegex() == "" {
		return "", p.field("regex").errorf("required")
	}
	if _, err := regexp.Compile(m.GetRegex()); err != nil {
		return "", p.field("regex").errorf("%v", err)
	}
	return m.GetRegex(), nil
}

func regexRewrite(p path, m *matcherv3.RegexMatchAndSubstitute) (*model.RegexRewrite, error) {
	re, err := regex(p.field("pattern"), m.GetPattern())
	if err != nil {
		return nil, err
	}
	return &model.RegexRewrite{Pattern: re, Substitution: m.GetSubstitution()}, nil
}

func routeAction(p path, a *routev3.RouteAction, kind model.PathMatchKind) (*model.RouteAction, error) {
	out := &model.RouteAction{}
	switch cs := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if cs.Cluster == "" {
			return nil, p.field("cluster").errorf("empty")
		}
		out.Cluster = cs.Cluster
	case *routev3.RouteAction_ClusterHeader:
		if !validHeaderName(strings.ToLower(cs.ClusterHeader), false) {
			return nil, p.field("cluster_header").errorf("%q is not a header name", cs.ClusterHeader)
		}
		out.ClusterHeader = strings.ToLower(cs.ClusterHeader)
	case *routev3.RouteAction_WeightedClusters:
		wp := p.field("weighted_clusters").field("clusters")
		var sum uint64
		for i, c := range cs.WeightedClusters.GetClusters() {
			cp := wp.index(i)
			if c.GetName() == "" {
				return nil, cp.field("name").errorf("required")
			}
			wc := model.WeightedCluster{Name: c.GetName(), Weight: c.GetWeight().GetValue()}
			var err error
			if wc.Headers, err = headerMutation(cp, c.GetRequestHeadersToAdd(), c.GetRequestHeadersToRemove(),
				c.GetResponseHeadersToAdd(), c.GetResponseHeadersToRemove()); err != nil {
				return nil, err
			}
			sum += uint64(wc.Weight)
			out.WeightedClusters = append(out.WeightedClusters, wc)
		}
		if len(out.WeightedClusters) == 0 {
			return nil, wp.errorf("at least one cluster required")
		}
		if sum == 0 {
			return nil, wp.errorf("sum of weights must be above 0")
		}
		if sum > 1<<32-1 {
			return nil, wp.errorf("sum of weights %d overflows 32 bits", sum)
		}
	default:
		return nil, p.errorf("one of cluster, cluster_header, weighted_clusters required")
	}
	switch a.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_SERVICE_UNAVAILABLE:
		out.ClusterNotFoundCode = 503
	case routev3.RouteAction_NOT_FOUND:
		out.ClusterNotFoundCode = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		out.ClusterNotFoundCode = 500
	default:
		return nil, p.field("cluster_not_found_response_code").errorf("%s not supported", a.GetClusterNotFoundResponseCode())
	}

	out.PrefixRewrite = a.GetPrefixRewrite()
	if a.GetRegexRewrite() != nil {
		if out.PrefixRewrite != "" {
			return nil, p.field("regex_rewrite").errorf("cannot be combined with prefix_rewrite")
		}
		var err error
		if out.RegexRewrite, err = regexRewrite(p.field("regex_rewrite"), a.GetRegexRewrite()); err != nil {
			return nil, err
		}
	}
	if out.PrefixRewrite != "" && (kind == model.PathRegex || kind == model.PathTemplate) {
		// A prefix rewrite needs a matched prefix to replace.
		return nil, p.field("prefix_rewrite").errorf("needs a prefix, path or path_separated_prefix match")
	}
	switch h := a.GetHostRewriteSpecifier().(type) {
	case *routev3.RouteAction_HostRewriteLiteral:
		if h.HostRewriteLiteral == "" || strings.ContainsAny(h.HostRewriteLiteral, " \t\r\n/") {
			return nil, p.field("host_rewrite_literal").errorf("%q is not a host", h.HostRewriteLiteral)
		}
		out.HostRewriteLiteral = h.HostRewriteLiteral
	case *routev3.RouteAction_AutoHostRewrite:
		out.AutoHostRewrite = h.AutoHostRewrite.GetValue()
	}

	var err error
	if out.Timeout, err = duration(p.field("timeout"), a.GetTimeout(), defaultRouteTimeout); err != nil {
		return nil, err
	}
	if out.IdleTimeout, err = duration(p.field("idle_timeout"), a.GetIdleTimeout(), 0); err != nil {
		return nil, err
	}
	for i, uc := range a.GetUpgradeConfigs() {
		up := p.field("upgrade_configs").index(i)
		if !strings.EqualFold(uc.GetUpgradeType(), "websocket") {
			return nil, up.field("upgrade_type").errorf("%q not supported (only websocket)", uc.GetUpgradeType())
		}
		if out.UpgradeWebSocket != nil {
			return nil, up.field("upgrade_type").errorf("duplicate upgrade type %q", uc.GetUpgradeType())
		}
		on := uc.GetEnabled() == nil || uc.GetEnabled().GetValue()
		out.UpgradeWebSocket = &on
	}
	if out.RetryPolicy, err = retryPolicy(p.field("retry_policy"), a.GetRetryPolicy()); err != nil {
		return nil, err
	}
	if out.HashPolicy, err = hashPolicies(p.field("hash_policy"), a.GetHashPolicy()); err != nil {
		return nil, err
	}
	if out.RequestMirrorPolicies, err = mirrorPolicies(p.field("request_mirror_policies"), a.GetRequestMirrorPolicies()); err != nil {
		return nil, err
	}
	out.HighPriority = a.GetPriority() == corev3.RoutingPriority_HIGH
	if m := a.GetMaxStreamDuration(); m != nil {
		mp := p.field("max_stream_duration")
		if out.MaxStreamDuration, err = duration(mp.field("max_stream_duration"), m.GetMaxStreamDuration(), 0); err != nil {
			return nil, err
		}
		if m.GetGrpcTimeoutHeaderMax() != nil {
			d, err := duration(mp.field("grpc_timeout_header_max"), m.GetGrpcTimeoutHeaderMax(), 0)
			if err != nil {
				return nil, err
			}
			out.GrpcTimeoutHeaderMax = &d
		}
		if out.GrpcTimeoutHeaderOffset, err = duration(mp.field("grpc_timeout_header_offset"), m.GetGrpcTimeoutHeaderOffset(), 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var redirectCodes = map[routev3.RedirectAction_RedirectResponseCode]int{
	routev3.RedirectAction_MOVED_PERMANENTLY:  301,
	routev3.RedirectAction_FOUND:              302,
	routev3.RedirectAction_SEE_OTHER:          303,
	routev3.RedirectAction_TEMPORARY_REDIRECT: 307,
	routev3.RedirectAction_PERMANENT_REDIRECT: 308,
}

func redirectAction(p path, r *routev3.RedirectAction) (*model.RedirectAction, error) {
	out := &model.RedirectAction{
		Host:       r.GetHostRedirect(),
		Port:       r.GetPortRedirect(),
		StripQuery: r.GetStripQuery(),
	}
	code, ok := redirectCodes[r.GetResponseCode()]
	if !ok {
		return nil, p.field("response_code").errorf("%s not supported", r.GetResponseCode())
	}
	out.Code = code
	switch s := r.GetSchemeRewriteSpecifier().(type) {
	case *routev3.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			out.Scheme = "https"
		}
	case *routev3.RedirectAction_SchemeRedirect:
		out.Scheme = strings.ToLower(s.SchemeRedirect)
		if !validScheme(out.Scheme) {
			return nil, p.field("scheme_redirect").errorf("%q is not a URL scheme", s.SchemeRedirect)
		}
	}
	if strings.ContainsAny(out.Host, " \t\r\n/?#") {
		return nil, p.field("host_redirect").errorf("%q is not a host", out.Host)
	}
	if out.Port > 65535 {
		return nil, p.field("port_redirect").errorf("%d out of range [0, 65535]", out.Port)
	}
	switch s := r.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PathRedirect:
		if !strings.HasPrefix(s.PathRedirect, "/") || strings.ContainsAny(s.PathRedirect, " \t\r\n") {
			return nil, p.field("path_redirect").errorf("%q is not an absolute path", s.PathRedirect)
		}
		out.Path = s.PathRedirect
	case *routev3.RedirectAction_PrefixRewrite:
		out.PrefixRewrite = s.PrefixRewrite
	case *routev3.RedirectAction_RegexRewrite:
		var err error
		if out.RegexRewrite, err = regexRewrite(p.field("regex_rewrite"), s.RegexRewrite); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func directResponse(p path, d *routev3.DirectResponseAction, maxBody uint32) (*model.DirectResponseAction, error) {
	if d.GetStatus() < 200 || d.GetStatus() >= 600 {
		return nil, p.field("status").errorf("%d out of range [200, 600)", d.GetStatus())
	}
	out := &model.DirectResponseAction{Status: int(d.GetStatus())}
	if d.GetBody() != nil {
		body, _, err := dataSource(p.field("body"), d.GetBody())
		if err != nil {
			return nil, err
		}
		if uint32(len(body)) > maxBody {
			return nil, p.field("body").errorf("%d bytes, above max_direct_response_body_size_bytes %d", len(body), maxBody)
		}
		out.Body = body
	}
	return out, nil
}

// perFilterConfig compiles typed_per_filter_config entries with each filter's NewOverride.
func perFilterConfig(p path, m map[string]*anypb.Any, reg *httpfilter.Registry) (map[string]any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]any, len(m))
	for _, name := range names {
		fp := p.key(name)
		a := m[name]
		optional := false
		if typeName(a.GetTypeUrl()) == "envoy.config.route.v3.FilterConfig" {
			msg, err := unpack(fp, a)
			if err != nil {
				return nil, err
			}
			if err := strict(fp, msg); err != nil {
				return nil, err
			}
			fc := msg.(*routev3.FilterConfig)
			if fc.GetDisabled() {
				out[name] = model.DisabledFilter{}
				continue
			}
			if fc.GetConfig() == nil {
				return nil, fp.field("config").errorf("required unless disabled")
			}
			a, optional, fp = fc.GetConfig(), fc.GetIsOptional(), fp.field("config")
		}
		typeURL, msg, err := filterConfig(fp, a, reg)
		if errors.Is(err, errUnknownFilter) {
			if optional {
				continue
			}
			return nil, fp.errorf("unknown filter type %s", typeURL)
		}
		if err != nil {
			return nil, err
		}
		f, _ := lookup(reg, typeURL)
		cfg, err := f.NewOverride(msg)
		if err != nil {
			return nil, fp.errorf("%s: %v", name, err)
		}
		out[name] = cfg
	}
	return out, nil
}

// headerMutation decodes the four header lists a route config, virtual host, route or
// weighted cluster may carry.
func headerMutation(p path, reqAdd []*corev3.HeaderValueOption, reqRemove []string,
	respAdd []*corev3.HeaderValueOption, respRemove []string) (model.HeaderMutation, error) {
	var out model.HeaderMutation
	var err error
	if out.RequestAdd, err = headersToAdd(p.field("request_headers_to_add"), reqAdd); err != nil {
		return out, err
	}
	if out.RequestRemove, err = headersToRemove(p.field("request_headers_to_remove"), reqRemove); err != nil {
		return out, err
	}
	if out.ResponseAdd, err = headersToAdd(p.field("response_headers_to_add"), respAdd); err != nil {
		return out, err
	}
	if out.ResponseRemove, err = headersToRemove(p.field("response_headers_to_remove"), respRemove); err != nil {
		return out, err
	}
	return out, nil
}

var appendActions = map[corev3.HeaderValueOption_HeaderAppendAction]model.AppendAction{
	corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:    model.AppendIfExistsOrAdd,
	corev3.HeaderValueOption_ADD_IF_ABSENT:              model.AddIfAbsent,
	corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD: model.OverwriteIfExistsOrAdd,
	corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:        model.OverwriteIfExists,
}

func headersToAdd(p path, hs []*corev3.HeaderValueOption) ([]model.HeaderValueOption, error) {
	var out []model.HeaderValueOption
	for i, h := range hs {
		hp := p.index(i)
		name := strings.ToLower(h.GetHeader().GetKey())
		if err := modifiableHeader(hp.field("header").field("key"), name); err != nil {
			return nil, err
		}
		value := h.GetHeader().GetValue()
		if raw := h.GetHeader().GetRawValue(); raw != nil {
			if value != "" {
				return nil, hp.field("header").errorf("value and raw_value are exclusive")
			}
			value = string(raw)
		}
		if err := headerValue(value); err != nil {
			return nil, hp.field("header").field("value").errorf("%v", err)
		}
		action, ok := appendActions[h.GetAppendAction()]
		if !ok {
			return nil, hp.field("append_action").errorf("%s not supported", h.GetAppendAction())
		}
		if ap := h.GetAppend(); ap != nil {
			if h.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				return nil, hp.field("append").errorf("cannot be combined with append_action")
			}
			if !ap.GetValue() {
				action = model.OverwriteIfExistsOrAdd
			}
		}
		out = append(out, model.HeaderValueOption{Name: name, Value: value, Action: action, KeepEmptyValue: h.GetKeepEmptyValue()})
	}
	return out, nil
}

func headersToRemove(p path, names []string) ([]string, error) {
	var out []string
	for i, n := range names {
		n = strings.ToLower(n)
		if err := modifiableHeader(p.index(i), n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// modifiableHeader rejects what Envoy refuses to let route configs touch: pseudo-headers and
// Host, which routing itself depends on.
func modifiableHeader(p path, name string) error {
	if !validHeaderName(name, true) {
		return p.errorf("%q is not a header name", name)
	}
	if strings.HasPrefix(name, ":") || name == "host" {
		return p.errorf("%q: pseudo-headers and host may not be modified", name)
	}
	return nil
}

// validHeaderName accepts RFC 9110 tokens, and pseudo-header names if pseudo is set.
func validHeaderName(name string, pseudo bool) bool {
	if pseudo && strings.HasPrefix(name, ":") {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerVariables are the %VAR% substitutions the header formatter implements.
var headerVariables = map[string]bool{
	"DOWNSTREAM_REMOTE_ADDRESS":              true,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": true,
	"DOWNSTREAM_LOCAL_ADDRESS":               true,
	"PROTOCOL":                               true,
	"UPSTREAM_REMOTE_ADDRESS":                true,
	"HOSTNAME":                               true,
	"START_TIME":                             true,
}

// headerValue checks a header value template: no control characters, and every %VAR% known
// ("%%" is a literal percent sign, as in Envoy).
func headerValue(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' || c == 0 {
			return fmt.Errorf("control character %q", c)
		}
		if c != '%' {
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			i++
			continue
		}
		j := i + 1
		for j < len(v) && (v[j] >= 'A' && v[j] <= 'Z' || v[j] == '_' || v[j] >= '0' && v[j] <= '9') {
			j++
		}
		name, arg, hasArg := v[i+1:j], "", false
		if j < len(v) && v[j] == '(' {
			end := strings.IndexByte(v[j:], ')')
			if end < 0 {
				return fmt.Errorf("unterminated %%%s(", name)
			}
			arg, hasArg = v[j+1:j+end], true
			j += end + 1
		}
		if j >= len(v) || v[j] != '%' {
			return fmt.Errorf("unterminated variable at %q (write %%%% for a literal %%)", v[i:])
		}
		switch {
		case name == "REQ":
			if !hasArg || !validHeaderName(strings.ToLower(arg), true) {
				return fmt.Errorf("%%REQ(header)%% needs a header name")
			}
		case name == "START_TIME":
			// %START_TIME% and %START_TIME(format)% are both fine.
		case headerVariables[name] && !hasArg:
		default:
			return fmt.Errorf("unsupported variable %%%s%%", v[i+1:j])
		}
		i = j
	}
	return nil
}

// uriTemplate checks Envoy's uri_template syntax: "/" separated segments of literals, "*"
// (one segment), "**" (the rest, last only), and up to five variables "{name}" or
// "{name=pattern}"; the last segment may end in a literal suffix ("/**.m3u8").
func uriTemplate(t string) error {
	if !strings.HasPrefix(t, "/") {
		return errors.New("must start with /")
	}
	vars := map[string]bool{}
	segs := splitTemplate(t[1:])
	for i, seg := range segs {
		last := i == len(segs)-1
		if err := templateSegment(seg, last, vars, false); err != nil {
			return err
		}
	}
	if len(vars) > 5 {
		return errors.New("at most 5 variables")
	}
	return nil
}

// splitTemplate splits on '/' outside braces.
func splitTemplate(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func templateSegment(seg string, last bool, vars map[string]bool, inVar bool) error {
	if seg == "" {
		return errors.New("empty segment")
	}
	switch {
	case seg == "*":
		return nil
	case seg == "**":
		if !last {
			return errors.New("** must be the last segment")
		}
		return nil
	case strings.HasPrefix(seg, "{"):
		if inVar {
			return errors.New("nested variable")
		}
		end := strings.IndexByte(seg, '}')
		if end < 0 {
			return errors.New("unterminated {")
		}
		body, suffix := seg[1:end], seg[end+1:]
		name, pattern, hasPattern := strings.Cut(body, "=")
		if !templateVarName.MatchString(name) {
			return fmt.Errorf("bad variable name %q", name)
		}
		if vars[name] {
			return fmt.Errorf("duplicate variable %q", name)
		}
		vars[name] = true
		if hasPattern {
			sub := strings.Split(pattern, "/")
			for j, s := range sub {
				if err := templateSegment(s, last && j == len(sub)-1, vars, true); err != nil {
					return err
				}
			}
		}
		if suffix != "" {
			if !last {
				return errors.New("a suffix after a variable is only allowed in the last segment")
			}
			return templateLiteral(suffix)
		}
		return nil
	case strings.HasPrefix(seg, "**") || strings.HasPrefix(seg, "*"):
		suffix := strings.TrimLeft(seg, "*")
		if !last {
			return errors.New("a suffix after * is only allowed in the last segment")
		}
		return templateLiteral(suffix)
	}
	return templateLiteral(seg)
}

var templateVarName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,15}$`)

// templateLiteral accepts RFC 3986 pchars.
func templateLiteral(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()+,;:@%", c) >= 0:
		default:
			return fmt.Errorf("%q not allowed in a literal", c)
		}
	}
	return nil
}
