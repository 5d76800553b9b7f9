package cluster

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// RouterStats are the router's request counters of one cluster, under Envoy's names
// (cluster.<name>.upstream_rq_*). They hang off the cluster's Ref, which outlives
// configuration updates, so a changed cluster keeps counting where the old one stopped.
type RouterStats struct {
	RqTotal           *stats.Counter   // upstream_rq_total: every attempt
	RqRetry           *stats.Counter   // upstream_rq_retry
	RqRetrySuccess    *stats.Counter   // upstream_rq_retry_success
	RqRetryOverflow   *stats.Counter   // upstream_rq_retry_overflow
	RqTimeout         *stats.Counter   // upstream_rq_timeout
	RqPerTryTimeout   *stats.Counter   // upstream_rq_per_try_timeout
	RqPendingOverflow *stats.Counter   // upstream_rq_pending_overflow
	RqMaxDuration     *stats.Counter   // upstream_rq_max_duration_reached
	MirrorTotal       *stats.Counter   // upstream_rq_mirror_total (requests shadowed to this cluster)
	MirrorFailed      *stats.Counter   // upstream_rq_mirror_failed (dropped or failed shadows)
	RqActive          *stats.Gauge     // upstream_rq_active: requests holding a max_requests slot
	RqCompleted       *stats.Counter   // upstream_rq_completed: requests answered by the upstream
	RqTime            *stats.Histogram // upstream_rq_time: ms from the first attempt to the stream's end

	class [6]*stats.Counter // upstream_rq_1xx … upstream_rq_5xx, by status/100
	codes [len(commonCodes)]*stats.Counter

	scope *stats.Scope
	mu    sync.Mutex // serializes creating rare codes' counters
	// other holds the counters of codes outside commonCodes, indexed by code-100. The array
	// is allocated when the first such code is seen and each counter on its first use, so
	// counting a rare code later is two atomic loads, like a common one.
	other atomic.Pointer[[500]atomic.Pointer[stats.Counter]]
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
		RqActive:          sc.Gauge("upstream_rq_active"),
		RqCompleted:       sc.Counter("upstream_rq_completed"),
		RqTime:            sc.Histogram("upstream_rq_time"),
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
	if arr := s.other.Load(); arr != nil {
		if c := arr[status-100].Load(); c != nil {
			c.Inc()
			return
		}
	}
	s.rareCode(status).Inc()
}

// rareCode creates the counter of a code outside commonCodes, once.
func (s *RouterStats) rareCode(status int) *stats.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	arr := s.other.Load()
	if arr == nil {
		arr = new([500]atomic.Pointer[stats.Counter])
		s.other.Store(arr)
	}
	c := arr[status-100].Load()
	if c == nil {
		c = s.scope.Counter("upstream_rq_" + strconv.Itoa(status))
		arr[status-100].Store(c)
	}
	return c
}

// Done ends a request counted in RqActive; answered says the upstream gave a response, which
// counts it as completed and records its time since start.
func (s *RouterStats) Done(start time.Time, answered bool) {
	s.RqActive.Dec()
	if answered && !start.IsZero() {
		s.RqCompleted.Inc()
		s.RqTime.Record(float64(time.Since(start)) / float64(time.Millisecond))
	}
}

// RouterStats returns the router counters of the ref's cluster, created on first use in the
// manager's store (stats.Default for a Ref made by NewRef).
func (r *Ref) RouterStats() *RouterStats {
	if s := r.rstats.Load(); s != nil {
		return s
	}
	store := r.store
	if store == nil {
		store = stats.Default
	}
	s := newRouterStats(store.Scope("cluster." + r.name))
	if !r.rstats.CompareAndSwap(nil, s) {
		s.scope.Release()
		return r.rstats.Load()
	}
	return s
}

// releaseStats drops the router counters of a cluster that was removed, so its stats leave
// the store. Streams still holding them count into detached counters; a cluster of the same
// name added later starts new ones.
func (r *Ref) releaseStats() {
	if s := r.rstats.Swap(nil); s != nil {
		s.scope.Release()
	}
}
