package simple

import (
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

// routeConfig groups a listener's routes into one virtual host per distinct host set, in the
// order each set first appears, keeping the routes' order within each. Validation guarantees a
// host is in one set only, so Envoy's domain matching picks the same routes the config lists.
func (t *translator) routeConfig(l *v1alpha1.Listener) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: l.Name}
	bySet := map[string]*routev3.VirtualHost{}
	for i := range l.Routes {
		r := &l.Routes[i]
		domains := v1alpha1.HostSet(r.Hosts)
		k := strings.Join(domains, ",")
		vh, ok := bySet[k]
		if !ok {
			// Host sets are disjoint, so any one host names its virtual host uniquely; the
			// first as written reads best.
			name := "*"
			if len(r.Hosts) > 0 {
				name = strings.ToLower(r.Hosts[0])
			}
			vh = &routev3.VirtualHost{Name: name, Domains: domains}
			bySet[k] = vh
			rc.VirtualHosts = append(rc.VirtualHosts, vh)
		}
		vh.Routes = append(vh.Routes, t.route(r))
	}
	return rc
}

func (t *translator) route(r *v1alpha1.Route) *routev3.Route {
	out := &routev3.Route{Name: r.Name, Match: match(r.Match)}
	switch {
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
	}
	if r.Fault != nil {
		// The connection manager's fault filter does nothing by itself; each route's faults
		// are its per-route config.
		out.TypedPerFilterConfig = map[string]*anypb.Any{faultName: routeFault(r.Fault)}
	}
	if h := r.Headers; h != nil {
		if h.Request != nil {
			out.RequestHeadersToAdd, out.RequestHeadersToRemove = headerOps(h.Request)
		}
		if h.Response != nil {
			out.ResponseHeadersToAdd, out.ResponseHeadersToRemove = headerOps(h.Response)
		}
	}
	return out
}

func match(m *v1alpha1.Match) *routev3.RouteMatch {
	out := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if m == nil {
		return out
	}
	switch {
	case m.Prefix != "":
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Prefix}
	case m.Path != "":
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case m.Regex != "":
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Regex}}
	}
	switch len(m.Methods) {
	case 0:
	case 1:
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name:                 ":method",
			HeaderMatchSpecifier: exact(m.Methods[0]),
		})
	default:
		// One header matcher cannot list alternatives, but a regex can; methods are validated
		// as upper-case letters, so they need no escaping.
		out.Headers = append(out.Headers, &routev3.HeaderMatcher{
			Name: ":method",
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: strings.Join(m.Methods, "|")}},
			}},
		})
	}
	for _, k := range byHeaderName(m.Headers) {
		hm := &routev3.HeaderMatcher{Name: strings.ToLower(k)}
		if v := m.Headers[k]; v == "" {
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		} else {
			hm.HeaderMatchSpecifier = exact(v)
		}
		out.Headers = append(out.Headers, hm)
	}
	for _, k := range sortedKeys(m.Query) {
		qm := &routev3.QueryParameterMatcher{Name: k}
		if v := m.Query[k]; v == "" {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		} else {
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v},
			}}
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out
}

func exact(v string) *routev3.HeaderMatcher_StringMatch {
	return &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v},
	}}
}

func forward(r *v1alpha1.Route) *routev3.RouteAction {
	a := &routev3.RouteAction{
		Timeout:     duration(r.Timeout),
		IdleTimeout: duration(r.IdleTimeout),
	}
	if r.Backend != "" {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: r.Backend}
	} else {
		wc := &routev3.WeightedCluster{}
		for _, b := range r.Backends {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
				Name:   b.Name,
				Weight: wrapperspb.UInt32(b.EffectiveWeight()),
			})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	if rw := r.Rewrite; rw != nil {
		a.PrefixRewrite = rw.Prefix
		if rw.Regex != nil {
			a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
				Pattern:      &matcherv3.RegexMatcher{Regex: rw.Regex.Pattern},
				Substitution: rw.Regex.Substitution,
			}
		}
		if rw.Host != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
	}
	resilience(a, r)
	return a
}

func redirect(r *v1alpha1.Redirect) *routev3.RedirectAction {
	out := &routev3.RedirectAction{
		HostRedirect: r.Host,
		PortRedirect: r.Port,
		StripQuery:   r.StripQuery,
	}
	if r.HTTPS {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}
	}
	if r.Path != "" {
		out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: r.Path}
	}
	if c, ok := redirectCodes[r.Code]; ok {
		out.ResponseCode = c
	}
	return out
}

// headerOps turns set and add into header options (set overwrites, add appends), names
// lower-cased as HTTP/2 requires, and lists the names to remove.
func headerOps(ops *v1alpha1.HeaderOps) ([]*corev3.HeaderValueOption, []string) {
	var add []*corev3.HeaderValueOption
	for _, k := range byHeaderName(ops.Set) {
		add = append(add, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: ops.Set[k]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, k := range byHeaderName(ops.Add) {
		add = append(add, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(k), Value: ops.Add[k]},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	var remove []string
	for _, k := range ops.Remove {
		remove = append(remove, strings.ToLower(k))
	}
	return add, remove
}

// byHeaderName returns the keys of a header map in the order of their lower-cased names, the
// names the output uses. Validation has ruled out two keys differing only in case.
func byHeaderName(m map[string]string) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return strings.ToLower(keys[i]) < strings.ToLower(keys[j]) })
	return keys
}
