package decode

import (
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

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
)

// RouteConfig decodes a route table delivered on its own (RDS): by Envoy's default its
// cluster references are resolved at request time, unless validate_clusters says otherwise.
func RouteConfig(rc *routev3.RouteConfiguration, reg *httpfilter.Registry) (*model.RouteConfig, error) {
	fs := newFilterSet(reg)
	defer fs.logSkipped()
	if err := strict("", rc); err != nil {
		return nil, err
	}
	return routeConfig("", rc, fs, false)
}

func routeConfig(p path, rc *routev3.RouteConfiguration, fs *filterSet, validateClusters bool) (*model.RouteConfig, error) {
	out, maxBody, err := routeConfigHead(p, rc, validateClusters)
	if err != nil {
		return nil, err
	}
	vhosts := make([]*model.VirtualHost, 0, len(rc.GetVirtualHosts()))
	for i, vh := range rc.GetVirtualHosts() {
		v, err := virtualHost(p.field("virtual_hosts").index(i), vh, fs, maxBody)
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

func virtualHost(p path, vh *routev3.VirtualHost, fs *filterSet, maxBody uint32) (*model.VirtualHost, error) {
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
	if out.TypedPerFilterConfig, err = perFilterConfig(p.field("typed_per_filter_config"), vh.GetTypedPerFilterConfig(), fs); err != nil {
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
		rt, err := route(p.field("routes").index(i), r, fs, maxBody)
		if err != nil {
			return nil, err
		}
		out.Routes = append(out.Routes, rt)
	}
	return out, nil
}

func route(p path, r *routev3.Route, fs *filterSet, maxBody uint32) (*model.Route, error) {
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
	if out.TypedPerFilterConfig, err = perFilterConfig(p.field("typed_per_filter_config"), r.GetTypedPerFilterConfig(), fs); err != nil {
		return nil, err
	}
	if v := r.GetPerRequestBufferLimitBytes(); v != nil {
		n := v.GetValue()
		out.PerRequestBufferLimitBytes = &n
	}
	return out, nil
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
