package httpfilter

import "github.com/nuncio-gw/nuncio/internal/stats"

// RouterStats are the counters Envoy's router keeps under its connection manager's scope
// (http.<stat_prefix>.no_route, …). The connection manager resolves them when it is built and
// hands every stream a pointer, so the router counts them with one atomic add and never needs
// to know the stat prefix.
type RouterStats struct {
	NoRoute          *stats.Counter // no_route: no route matched (404, flag NR)
	NoCluster        *stats.Counter // no_cluster: the route's cluster does not exist (flag NC)
	RqRedirect       *stats.Counter // rq_redirect: answered with a redirect route
	RqDirectResponse *stats.Counter // rq_direct_response: answered with a direct_response route
}

// NewRouterStats resolves the router counters in sc (a connection manager's "http.<prefix>." scope).
func NewRouterStats(sc *stats.Scope) *RouterStats {
	return &RouterStats{
		NoRoute:          sc.Counter("no_route"),
		NoCluster:        sc.Counter("no_cluster"),
		RqRedirect:       sc.Counter("rq_redirect"),
		RqDirectResponse: sc.Counter("rq_direct_response"),
	}
}
