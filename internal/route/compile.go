package route

import (
	"errors"
	"fmt"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Compile builds an immutable Table from a validated route configuration.
//
// resolve maps a cluster name to its slot. Compile calls it for every cluster a route names
// (route.cluster, weighted_clusters) and keeps the results, so forwarding never looks a cluster
// up by name. A nil resolve gives each distinct name a fresh cluster.NewRef; resolve may return
// nil for a name it does not know, and PickCluster then reports no cluster (the router answers
// with the route's ClusterNotFoundCode).
//
// For cluster_header routes the name arrives with the request. PickCluster first looks it up in
// the names known at compile time and only then calls resolve, on the request path and
// concurrently, with a client-supplied string: resolve must be safe for concurrent use and
// should return nil for a name it has no cluster for rather than create a slot, or any client
// could grow the registry.
//
// Errors name the virtual host and route they concern.
func Compile(rc *model.RouteConfig, resolve func(clusterName string) *cluster.Ref) (*Table, error) {
	if rc == nil {
		return nil, errors.New("route: nil route configuration")
	}
	c := compiler{refs: map[string]*cluster.Ref{}, resolve: resolve}
	if resolve == nil {
		c.resolve = func(name string) *cluster.Ref { return cluster.NewRef(name) }
	}
	t := &Table{name: rc.Name}
	var err error
	if t.headers, err = compileMutation(&rc.Headers); err != nil {
		return nil, fmt.Errorf("route %q: %w", rc.Name, err)
	}
	for i, mv := range rc.VirtualHosts {
		vh, err := c.virtualHost(t, rc, mv)
		if err != nil {
			return nil, fmt.Errorf("route %q: virtual_hosts[%d] %q: %w", rc.Name, i, mv.Name, err)
		}
		t.vhosts = append(t.vhosts, vh)
	}
	return t, nil
}

type compiler struct {
	// refs holds every name resolved so far; forwards share it for cluster_header lookups, so
	// it must not change after Compile returns.
	refs    map[string]*cluster.Ref
	resolve func(string) *cluster.Ref
}

func (c *compiler) ref(name string) *cluster.Ref {
	if r, ok := c.refs[name]; ok {
		return r
	}
	r := c.resolve(name)
	c.refs[name] = r
	return r
}

func (c *compiler) virtualHost(t *Table, rc *model.RouteConfig, mv *model.VirtualHost) (*VirtualHost, error) {
	vh := &VirtualHost{Name: mv.Name}
	var err error
	if vh.perFilter, err = compileOverrides(mv.TypedPerFilterConfig); err != nil {
		return nil, err
	}
	if len(mv.Domains) == 0 {
		return nil, errors.New("domains: at least one domain is required")
	}
	for _, d := range mv.Domains {
		if err := t.domains.add(d, vh); err != nil {
			return nil, fmt.Errorf("domains: %w", err)
		}
	}
	if vh.headers, err = compileMutation(&mv.Headers); err != nil {
		return nil, err
	}
	for i, mr := range mv.Routes {
		e, err := c.route(t, rc, vh, mv, mr)
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, mr.Name, err)
		}
		vh.routes = append(vh.routes, e)
	}
	vh.index = buildPathIndex(vh.routes)
	return vh, nil
}

func (c *compiler) route(t *Table, rc *model.RouteConfig, vh *VirtualHost, mv *model.VirtualHost, mr *model.Route) (*Entry, error) {
	e := &Entry{Name: mr.Name, vhost: vh}
	var err error
	if e.perFilter, err = compileOverrides(mr.TypedPerFilterConfig); err != nil {
		return nil, err
	}
	if e.match, err = compileRouteMatch(&mr.Match); err != nil {
		return nil, err
	}
	if e.headers, err = compileMutation(&mr.Headers); err != nil {
		return nil, err
	}
	levels := []*Mutation{e.headers, vh.headers, t.headers}
	if rc.MostSpecificHeaderMutationsWins {
		levels = []*Mutation{t.headers, vh.headers, e.headers}
	}
	for _, m := range levels {
		if m != nil {
			e.mutations = append(e.mutations, m)
		}
	}

	actions := 0
	for _, set := range []bool{mr.Route != nil, mr.Redirect != nil, mr.DirectResponse != nil} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		return nil, errors.New("exactly one of route, redirect and direct_response is required")
	}
	switch {
	case mr.Route != nil:
		e.Kind = ActionForward
		e.Forward, err = c.forward(mr.Route, &e.rewrite)
		if err == nil {
			err = c.resilience(e.Forward, mv, mr)
		}
	case mr.Redirect != nil:
		e.Kind = ActionRedirect
		e.redirect, err = compileRedirect(mr.Redirect)
		if err == nil {
			err = compileRewrite(&e.rewrite, mr.Redirect.PrefixRewrite, mr.Redirect.RegexRewrite, "redirect")
			e.redirect.rewritesPath = e.rewrite.rewritesPath()
		}
	default:
		e.Kind = ActionDirect
		d := mr.DirectResponse
		if d.Status < 200 || d.Status > 599 {
			return nil, fmt.Errorf("direct_response.status %d out of range [200, 600)", d.Status)
		}
		e.direct = direct{status: d.Status, body: d.Body}
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (c *compiler) forward(ra *model.RouteAction, rw *pathRewrite) (*Forward, error) {
	f := &Forward{
		Timeout: ra.Timeout, IdleTimeout: ra.IdleTimeout,
		ClusterHeader: lowerASCII(ra.ClusterHeader), ClusterNotFoundCode: ra.ClusterNotFoundCode,
		HostRewriteLiteral: ra.HostRewriteLiteral, AutoHostRewrite: ra.AutoHostRewrite,
		UpgradeWebSocket: ra.UpgradeWebSocket,
	}
	switch f.ClusterNotFoundCode {
	case 0:
		f.ClusterNotFoundCode = 503
	case 503, 404:
	default:
		return nil, fmt.Errorf("route.cluster_not_found_response_code %d: must be 503 or 404", f.ClusterNotFoundCode)
	}
	specifiers := 0
	if ra.Cluster != "" {
		specifiers++
		f.cluster = ra.Cluster
		f.ref = c.ref(ra.Cluster)
	}
	if len(ra.WeightedClusters) > 0 {
		specifiers++
		for i := range ra.WeightedClusters {
			wc := &ra.WeightedClusters[i]
			if wc.Name == "" {
				return nil, fmt.Errorf("route.weighted_clusters.clusters[%d]: empty name", i)
			}
			hm, err := compileMutation(&wc.Headers)
			if err != nil {
				return nil, fmt.Errorf("route.weighted_clusters.clusters[%d] %q: %w", i, wc.Name, err)
			}
			f.total += uint64(wc.Weight)
			f.weighted = append(f.weighted, weightedCluster{
				name: wc.Name, ref: c.ref(wc.Name), end: f.total, headers: hm,
			})
		}
		if f.total == 0 {
			return nil, errors.New("route.weighted_clusters: total weight must be positive")
		}
	}
	if f.ClusterHeader != "" {
		specifiers++
		f.byName = c.refs
		f.resolve = c.resolve
	}
	if specifiers != 1 {
		return nil, errors.New("route: exactly one of cluster, weighted_clusters and cluster_header is required")
	}
	rw.host = ra.HostRewriteLiteral
	if err := compileRewrite(rw, ra.PrefixRewrite, ra.RegexRewrite, "route"); err != nil {
		return nil, err
	}
	return f, nil
}

// resilience compiles what a route inherits from its virtual host: the retry policy (the
// route's own replaces the virtual host's whole, as in Envoy), attempt-count headers and the
// request buffer limit; and the route's own timeouts, hash policy and mirrors.
func (c *compiler) resilience(f *Forward, mv *model.VirtualHost, mr *model.Route) error {
	ra := mr.Route
	rp := ra.RetryPolicy
	if rp == nil {
		rp = mv.RetryPolicy
	}
	var err error
	if f.Retry, err = compileRetryPolicy(rp); err != nil {
		return err
	}
	f.IncludeAttemptCount = mv.IncludeRequestAttemptCount
	f.IncludeAttemptCountInResponse = mv.IncludeAttemptCountInResponse
	switch {
	case mr.PerRequestBufferLimitBytes != nil:
		f.BufferLimit = *mr.PerRequestBufferLimitBytes
	case mv.PerRequestBufferLimitBytes != nil:
		f.BufferLimit = *mv.PerRequestBufferLimitBytes
	}
	f.MaxStreamDuration = ra.MaxStreamDuration
	f.HighPriority = ra.HighPriority
	f.GrpcTimeoutHeaderMax = ra.GrpcTimeoutHeaderMax
	f.GrpcTimeoutHeaderOffset = ra.GrpcTimeoutHeaderOffset
	f.hash = compileHashPolicies(ra.HashPolicy)
	if f.Mirrors, err = c.mirrors(ra.RequestMirrorPolicies); err != nil {
		return err
	}
	return nil
}

func compileRewrite(rw *pathRewrite, prefix string, rr *model.RegexRewrite, field string) error {
	if prefix != "" && rr != nil {
		return fmt.Errorf("%s: prefix_rewrite and regex_rewrite are exclusive", field)
	}
	if prefix != "" {
		rw.prefix, rw.hasPrefix = prefix, true
	}
	if rr != nil {
		re, tmpl, err := compileRegexRewrite(rr)
		if err != nil {
			return fmt.Errorf("%s.regex_rewrite: %w", field, err)
		}
		rw.re, rw.template = re, tmpl
	}
	return nil
}
