package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// routeConfig is l's route table.
func routeConfig(l *ir.Listener, host hostEncoder) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: l.HTTP.RouteName}
	for _, vh := range l.HTTP.VirtualHosts {
		rc.VirtualHosts = append(rc.VirtualHosts, host(l, vh))
	}
	return rc
}

// virtualHost encodes vh for a listener that terminates TLS or not: HTTPSRedirect routes
// redirect on plain listeners only.
func virtualHost(vh *ir.VirtualHost, tls bool) *routev3.VirtualHost {
	out := &routev3.VirtualHost{Name: vh.Name, Domains: vh.Domains}
	for _, r := range vh.Routes {
		out.Routes = append(out.Routes, route(r, tls))
	}
	return out
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func route(r *ir.Route, tls bool) *routev3.Route {
	out := &routev3.Route{Name: r.Name, Match: match(r.Match)}
	switch {
	case r.HTTPSRedirect && !tls:
		out.Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{
			SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
			ResponseCode:           routev3.RedirectAction_PERMANENT_REDIRECT,
		}}
		return out
	case r.Redirect != nil:
		out.Action = &routev3.Route_Redirect{Redirect: redirect(r.Redirect)}
	case r.Respond != nil:
		dr := &routev3.DirectResponseAction{Status: uint32(r.Respond.Status)}
		if r.Respond.Body != "" {
			dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: r.Respond.Body}}
		}
		out.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
	default:
		out.Action = &routev3.Route_Route{Route: forward(r)}
		if r.BufferLimit > 0 {
			out.PerRequestBufferLimitBytes = wrapperspb.UInt32(r.BufferLimit)
		}
	}
	for _, f := range features {
		if f.route != nil {
			f.route(out, r)
		}
	}
	return out
}

func redirect(rd *ir.Redirect) *routev3.RedirectAction {
	a := &routev3.RedirectAction{HostRedirect: rd.Host, PortRedirect: rd.Port, StripQuery: rd.StripQuery, ResponseCode: redirectCodes[rd.Code]}
	switch {
	case rd.HTTPS:
		a.SchemeRewriteSpecifier = &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}
	case rd.Scheme != "":
		a.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	if rd.Path != "" {
		a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: rd.Path}
	}
	return a
}

// forward is a forwarding route's action: its backends, rewrites and timeouts, then what the
// features add (retries, hashing, mirrors).
func forward(r *ir.Route) *routev3.RouteAction {
	a := &routev3.RouteAction{Timeout: optDur(r.Timeout), IdleTimeout: optDur(r.IdleTimeout)}
	if len(r.Backends) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: r.Backends[0].Cluster}
	} else {
		wc := &routev3.WeightedCluster{}
		for _, b := range r.Backends {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: b.Cluster, Weight: wrapperspb.UInt32(b.Weight)})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	if rw := r.Rewrite; rw != nil {
		a.PrefixRewrite = rw.Prefix
		if rw.Pattern != "" {
			a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: rw.Pattern}, Substitution: rw.Substitution}
		}
		if rw.Host != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
	}
	for _, f := range features {
		if f.routeAction != nil {
			f.routeAction(a, r)
		}
	}
	return a
}

func match(m ir.Match) *routev3.RouteMatch {
	out := &routev3.RouteMatch{}
	regex := func(re string) {
		if m.CaseInsensitive {
			re = "(?i)" + re
		}
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}
	}
	switch m.Kind {
	case ir.PathExact:
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case ir.PathPrefix:
		if m.Path == "/" {
			out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
		} else {
			out.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: m.Path}
		}
	case ir.PathStringPrefix:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Path}
	case ir.PathRegex:
		regex(m.Path)
	case ir.PathRegexPrefix:
		regex(m.Path + ".*")
	default:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: h.Name, InvertMatch: h.Invert}
		switch {
		case h.Present:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		case h.Regex != "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.Regex}},
			}}
		default:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact},
			}}
		}
		out.Headers = append(out.Headers, hm)
	}
	for _, q := range m.Query {
		qm := &routev3.QueryParameterMatcher{Name: q.Name}
		if q.Present {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		} else {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: q.Exact},
			}}
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out
}
