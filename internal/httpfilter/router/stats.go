package router

import "github.com/nuncio-gw/nuncio/internal/stats"

// routerStats are the counters Envoy's router keeps under its connection manager's scope
// (http.<stat_prefix>.no_route, …), resolved once per chain (Config.WithScope) so that the
// router counts with one atomic add.
type routerStats struct {
	noRoute          *stats.Counter // no_route: no route matched (404, flag NR)
	noCluster        *stats.Counter // no_cluster: the route's cluster does not exist (flag NC)
	rqRedirect       *stats.Counter // rq_redirect: answered with a redirect route
	rqDirectResponse *stats.Counter // rq_direct_response: answered with a direct_response route
}

func newRouterStats(sc *stats.Scope) *routerStats {
	return &routerStats{
		noRoute:          sc.Counter("no_route"),
		noCluster:        sc.Counter("no_cluster"),
		rqRedirect:       sc.Counter("rq_redirect"),
		rqDirectResponse: sc.Counter("rq_direct_response"),
	}
}
