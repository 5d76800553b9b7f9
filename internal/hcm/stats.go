package hcm

import (
	"runtime"
	"time"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// connStats are the connection manager's stats under Envoy's names (http.<stat_prefix>.*),
// resolved once per Config so that counting a request or a connection is a few atomic adds.
type connStats struct {
	rqTotal *stats.Counter
	rqClass [6]*stats.Counter // index status/100; 0 unused
	rqTime  *stats.Histogram  // milliseconds from request start to stream end

	rqActive     *stats.Gauge   // downstream_rq_active
	rqHTTP1Total *stats.Counter // downstream_rq_http1_total
	rqHTTP2Total *stats.Counter // downstream_rq_http2_total
	rqTimeout    *stats.Counter // downstream_rq_timeout: request or stream idle timeout (flag SI)
	rqRxReset    *stats.Counter // downstream_rq_rx_reset: the client went away (flag DC)
	rqTxReset    *stats.Counter // downstream_rq_tx_reset: we reset the stream (flag LR)

	cxTotal       *stats.Counter   // downstream_cx_total
	cxDestroy     *stats.Counter   // downstream_cx_destroy
	cxActive      *stats.Gauge     // downstream_cx_active
	cxLength      *stats.Histogram // downstream_cx_length_ms
	cxHTTP1Total  *stats.Counter   // downstream_cx_http1_total
	cxHTTP2Total  *stats.Counter   // downstream_cx_http2_total
	cxHTTP1Active *stats.Gauge     // downstream_cx_http1_active
	cxHTTP2Active *stats.Gauge     // downstream_cx_http2_active

	// scope is http.<stat_prefix>., where filters' scoped stats go (httpfilter.ScopedConfig).
	scope *stats.Scope
}

// newConnStats resolves the stats in store. The scope is released when the Config becomes
// unreachable, so the stats of a removed connection manager leave the store while those a
// newer Config with the same prefix still holds stay, and keep counting.
func newConnStats(c *Config, store *stats.Store, prefix string) connStats {
	sc := store.Scope("http." + prefix)
	cs := connStats{
		rqTotal:       sc.Counter("downstream_rq_total"),
		rqTime:        sc.Histogram("downstream_rq_time"),
		rqActive:      sc.Gauge("downstream_rq_active"),
		rqHTTP1Total:  sc.Counter("downstream_rq_http1_total"),
		rqHTTP2Total:  sc.Counter("downstream_rq_http2_total"),
		rqTimeout:     sc.Counter("downstream_rq_timeout"),
		rqRxReset:     sc.Counter("downstream_rq_rx_reset"),
		rqTxReset:     sc.Counter("downstream_rq_tx_reset"),
		cxTotal:       sc.Counter("downstream_cx_total"),
		cxDestroy:     sc.Counter("downstream_cx_destroy"),
		cxActive:      sc.Gauge("downstream_cx_active"),
		cxLength:      sc.Histogram("downstream_cx_length_ms"),
		cxHTTP1Total:  sc.Counter("downstream_cx_http1_total"),
		cxHTTP2Total:  sc.Counter("downstream_cx_http2_total"),
		cxHTTP1Active: sc.Gauge("downstream_cx_http1_active"),
		cxHTTP2Active: sc.Gauge("downstream_cx_http2_active"),
		scope:         sc,
	}
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

// requestStarted counts a request in downstream_rq_active until finish sees its stream end.
func (cs *connStats) requestStarted() {
	if cs.rqActive != nil {
		cs.rqActive.Inc()
	}
}

// finish records the end of stream s: count's stats, then those that depend on how it went.
func (cs *connStats) finish(s *stream) {
	if s.Info.Start.IsZero() || cs.rqTotal == nil {
		return
	}
	cs.count(s.Info.Start, s.Response.Status)
	cs.rqActive.Dec()
	if s.Downstream.Protocol == "HTTP/2" {
		cs.rqHTTP2Total.Inc()
	} else {
		cs.rqHTTP1Total.Inc()
	}
	if fl := s.Info.ResponseFlags; fl&(httpfilter.FlagStreamIdleTimeout|httpfilter.FlagDownstreamConnectionTermination|httpfilter.FlagLocalReset) != 0 {
		if fl&httpfilter.FlagStreamIdleTimeout != 0 {
			cs.rqTimeout.Inc()
		}
		if fl&httpfilter.FlagDownstreamConnectionTermination != 0 {
			cs.rqRxReset.Inc()
		}
		if fl&httpfilter.FlagLocalReset != 0 {
			cs.rqTxReset.Inc()
		}
	}
}

// connOpened counts a connection handed to the connection manager; connClosed, deferred
// with the time it opened, ends it.
func (cs *connStats) connOpened() {
	if cs.cxTotal == nil {
		return
	}
	cs.cxTotal.Inc()
	cs.cxActive.Inc()
}

func (cs *connStats) connClosed(start time.Time) {
	if cs.cxTotal == nil {
		return
	}
	cs.cxActive.Dec()
	cs.cxDestroy.Inc()
	cs.cxLength.Record(float64(time.Since(start)) / float64(time.Millisecond))
}

// codecStarted counts the connection's protocol once it is known; the returned gauge is
// decremented when the connection ends.
func (cs *connStats) codecStarted(h2 bool) *stats.Gauge {
	if cs.cxTotal == nil {
		return nil
	}
	if h2 {
		cs.cxHTTP2Total.Inc()
		cs.cxHTTP2Active.Inc()
		return cs.cxHTTP2Active
	}
	cs.cxHTTP1Total.Inc()
	cs.cxHTTP1Active.Inc()
	return cs.cxHTTP1Active
}

// codecEnded undoes codecStarted's gauge.
func codecEnded(g *stats.Gauge) {
	if g != nil {
		g.Dec()
	}
}
