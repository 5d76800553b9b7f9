package upstream

import (
	"context"
	"errors"
	"net"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// ConnStats are the connection counters of a cluster's pools under Envoy's names
// (cluster.<name>.upstream_cx_*). Every pool of a cluster shares one ConnStats, resolved when
// the cluster is built; updating them is an atomic add per connection event.
type ConnStats struct {
	Total          *stats.Counter // upstream_cx_total
	Active         *stats.Gauge   // upstream_cx_active
	HTTP1Total     *stats.Counter // upstream_cx_http1_total
	HTTP2Total     *stats.Counter // upstream_cx_http2_total
	ConnectFail    *stats.Counter // upstream_cx_connect_fail
	ConnectTimeout *stats.Counter // upstream_cx_connect_timeout (also counted in connect_fail)
	Destroy        *stats.Counter // upstream_cx_destroy
	IdleTimeout    *stats.Counter // upstream_cx_idle_timeout (HTTP/1.1 pools)
}

// NewConnStats resolves the counters in sc (a cluster's "cluster.<name>." scope).
func NewConnStats(sc *stats.Scope) *ConnStats {
	return &ConnStats{
		Total:          sc.Counter("upstream_cx_total"),
		Active:         sc.Gauge("upstream_cx_active"),
		HTTP1Total:     sc.Counter("upstream_cx_http1_total"),
		HTTP2Total:     sc.Counter("upstream_cx_http2_total"),
		ConnectFail:    sc.Counter("upstream_cx_connect_fail"),
		ConnectTimeout: sc.Counter("upstream_cx_connect_timeout"),
		Destroy:        sc.Counter("upstream_cx_destroy"),
		IdleTimeout:    sc.Counter("upstream_cx_idle_timeout"),
	}
}

func (s *ConnStats) connected(proto Protocol) {
	if s == nil {
		return
	}
	s.Total.Inc()
	s.Active.Inc()
	if proto == HTTP2 {
		s.HTTP2Total.Inc()
	} else {
		s.HTTP1Total.Inc()
	}
}

func (s *ConnStats) connectFailed(err error) {
	if s == nil {
		return
	}
	s.ConnectFail.Inc()
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		s.ConnectTimeout.Inc()
	}
}

func (s *ConnStats) destroyed() {
	if s == nil {
		return
	}
	s.Active.Dec()
	s.Destroy.Inc()
}
