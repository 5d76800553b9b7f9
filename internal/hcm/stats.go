package hcm

import (
	"runtime"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// connStats are the connection manager's request stats under Envoy's names
// (http.<stat_prefix>.downstream_rq_total, downstream_rq_<N>xx, downstream_rq_time), resolved
// once per Config so that counting a request is a few atomic adds.
type connStats struct {
	rqTotal *stats.Counter
	rqClass [6]*stats.Counter // index status/100; 0 unused
	rqTime  *stats.Histogram  // milliseconds from request start to stream end
}

// newConnStats resolves the stats in store. The scope is released when the Config becomes
// unreachable, so the stats of a removed connection manager leave the store while those a
// newer Config with the same prefix still holds stay, and keep counting.
func newConnStats(c *Config, store *stats.Store, prefix string) connStats {
	sc := store.Scope("http." + prefix)
	cs := connStats{rqTotal: sc.Counter("downstream_rq_total"), rqTime: sc.Histogram("downstream_rq_time")}
	for i, name := range [...]string{"", "downstream_rq_1xx", "downstream_rq_2xx", "downstream_rq_3xx", "downstream_rq_4xx", "downstream_rq_5xx"} {
		if name != "" {
			cs.rqClass[i] = sc.Counter(name)
		}
	}
	runtime.AddCleanup(c, func(sc *stats.Scope) { sc.Release() }, sc)
	return cs
}

// count records a finished stream. A stream that never received a request (an idle
// connection closing) is not a request.
func (cs *connStats) count(start time.Time, status int) {
	if start.IsZero() || cs.rqTotal == nil {
		return
	}
	cs.rqTotal.Inc()
	if status >= 100 && status < 600 {
		cs.rqClass[status/100].Inc()
	}
	cs.rqTime.Record(float64(time.Since(start)) / float64(time.Millisecond))
}
