package cluster

import (
	"strconv"
	"sync"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// RouterStats are the router's request counters of one cluster, under Envoy's names
// (cluster.<name>.upstream_rq_*). They hang off the cluster's Ref, which outlives
// configuration updates, so a changed cluster keeps counting where the old one stopped.
type RouterStats struct {
	RqTotal           *stats.Counter // upstream_rq_total: every attempt
	RqRetry           *stats.Counter // upstream_rq_retry
	RqRetrySuccess    *stats.Counter // upstream_rq_retry_success
	RqRetryOverflow   *stats.Counter // upstream_rq_retry_overflow
	RqTimeout         *stats.Counter // upstream_rq_timeout
	RqPerTryTimeout   *stats.Counter // upstream_rq_per_try_timeout
	RqPendingOverflow *stats.Counter // upstream_rq_pending_overflow
	RqMaxDuration     *stats.Counter // upstream_rq_max_duration_reached
	MirrorTotal       *stats.Counter // upstream_rq_mirror_total (requests shadowed to this cluster)
	MirrorFailed      *stats.Counter // upstream_rq_mirror_failed (dropped or failed shadows)

	class [6]*stats.Counter // upstream_rq_1xx … upstream_rq_5xx, by status/100
	codes [len(commonCodes)]*stats.Counter

	scope *stats.Scope
	mu    sync.Mutex
	other map[int]*stats.Counter // rare codes, created on first use
}

// commonCodes get a counter up front, so counting them takes no lock.
var commonCodes = [...]int{200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504}

func newRouterStats(sc *stats.Scope) *RouterStats {
	s := &RouterStats{
		scope:             sc,
		RqTotal:           sc.Counter("upstream_rq_total"),
		RqRetry:           sc.Counter("upstream_rq_retry"),
		RqRetrySuccess:    sc.Counter("upstream_rq_retry_success"),
		RqRetryOverflow:   sc.Counter("upstream_rq_retry_overflow"),
		RqTimeout:         sc.Counter("upstream_rq_timeout"),
		RqPerTryTimeout:   sc.Counter("upstream_rq_per_try_timeout"),
		RqPendingOverflow: sc.Counter("upstream_rq_pending_overflow"),
		RqMaxDuration:     sc.Counter("upstream_rq_max_duration_reached"),
		MirrorTotal:       sc.Counter("upstream_rq_mirror_total"),
		MirrorFailed:      sc.Counter("upstream_rq_mirror_failed"),
	}
	for i := 1; i <= 5; i++ {
		s.class[i] = sc.Counter("upstream_rq_" + strconv.Itoa(i) + "xx")
	}
	for i, c := range commonCodes {
		s.codes[i] = sc.Counter("upstream_rq_" + strconv.Itoa(c))
	}
	return s
}

// Code counts one upstream response: upstream_rq_<code> and upstream_rq_<N>xx.
func (s *RouterStats) Code(status int) {
	if status < 100 || status > 599 {
		return
	}
	s.class[status/100].Inc()
	for i, c := range commonCodes {
		if c == status {
			s.codes[i].Inc()
			return
		}
	}
	s.mu.Lock()
	c := s.other[status]
	if c == nil {
		if s.other == nil {
			s.other = map[int]*stats.Counter{}
		}
		c = s.scope.Counter("upstream_rq_" + strconv.Itoa(status))
		s.other[status] = c
	}
	s.mu.Unlock()
	c.Inc()
}

// RouterStats returns the router counters of the ref's cluster, created on first use in
// stats.Default.
func (r *Ref) RouterStats() *RouterStats {
	if s := r.rstats.Load(); s != nil {
		return s
	}
	s := newRouterStats(stats.Default.Scope("cluster." + r.name))
	if !r.rstats.CompareAndSwap(nil, s) {
		s.scope.Release()
		return r.rstats.Load()
	}
	return s
}
