package listener

import (
	"net/netip"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// listenerStats are one listener's stats under Envoy's names (listener.<address>.*), resolved
// when the listener starts and released when it has drained. A listener rebound on the same
// address shares them by name, so the counts carry on.
type listenerStats struct {
	scope        *stats.Scope
	cxTotal      *stats.Counter   // downstream_cx_total
	cxDestroy    *stats.Counter   // downstream_cx_destroy
	cxActive     *stats.Gauge     // downstream_cx_active
	cxLength     *stats.Histogram // downstream_cx_length_ms
	cxOverflow   *stats.Counter   // downstream_cx_overflow: refused by connection_limit
	noMatch      *stats.Counter   // no_filter_chain_match
	sslHandshake *stats.Counter   // ssl.handshake
	sslError     *stats.Counter   // ssl.connection_error
}

func newListenerStats(store *stats.Store, addr netip.AddrPort) *listenerStats {
	sc := store.Scope("listener." + StatAddress(addr))
	return &listenerStats{
		scope:        sc,
		cxTotal:      sc.Counter("downstream_cx_total"),
		cxDestroy:    sc.Counter("downstream_cx_destroy"),
		cxActive:     sc.Gauge("downstream_cx_active"),
		cxLength:     sc.Histogram("downstream_cx_length_ms"),
		cxOverflow:   sc.Counter("downstream_cx_overflow"),
		noMatch:      sc.Counter("no_filter_chain_match"),
		sslHandshake: sc.Counter("ssl.handshake"),
		sslError:     sc.Counter("ssl.connection_error"),
	}
}

// StatAddress is a listener address as Envoy writes it into stat names: the address string
// with every ':' replaced by '_' ("0.0.0.0_8080", "[__]_8080"), because ':' separates a
// stat's name from its value in Envoy's text formats.
func StatAddress(a netip.AddrPort) string {
	return strings.ReplaceAll(netip.AddrPortFrom(a.Addr().Unmap(), a.Port()).String(), ":", "_")
}

// opened counts an accepted connection; closed, deferred with the time it opened, ends it.
func (s *listenerStats) opened() {
	s.cxTotal.Inc()
	s.cxActive.Inc()
}

func (s *listenerStats) closed(start time.Time) {
	s.cxActive.Dec()
	s.cxDestroy.Inc()
	s.cxLength.Record(float64(time.Since(start)) / float64(time.Millisecond))
}
