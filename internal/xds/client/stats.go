package client

import "github.com/nuncio-gw/nuncio/internal/stats"

// xdsStats count updates per resource type and the stream's state. LDS and CDS use Envoy's
// names (listener_manager.lds.*, cluster_manager.cds.*); Envoy counts RDS, EDS and SDS per
// resource under names that depend on the listener's stat prefix, so those are counted per
// type under nuncio.xds.<type>.* instead.
type xdsStats struct {
	scopes    []*stats.Scope
	kinds     [numKinds]kindStats
	connected *stats.Gauge
}

type kindStats struct {
	attempt, success, rejected *stats.Counter
}

func newXDSStats(st *stats.Store) *xdsStats {
	if st == nil {
		st = stats.Default
	}
	x := &xdsStats{}
	prefixes := [numKinds]string{
		kindLDS: "listener_manager.lds", kindCDS: "cluster_manager.cds",
		kindRDS: "nuncio.xds.rds", kindEDS: "nuncio.xds.eds", kindSDS: "nuncio.xds.sds",
	}
	for k, p := range prefixes {
		sc := st.Scope(p)
		x.scopes = append(x.scopes, sc)
		x.kinds[k] = kindStats{
			attempt: sc.Counter("update_attempt"), success: sc.Counter("update_success"),
			rejected: sc.Counter("update_rejected"),
		}
	}
	cp := st.Scope("control_plane")
	x.scopes = append(x.scopes, cp)
	x.connected = cp.Gauge("connected_state")
	return x
}

// count records one processed update of kind k.
func (x *xdsStats) count(k kind, err error) {
	ks := &x.kinds[k]
	ks.attempt.Inc()
	if err != nil {
		ks.rejected.Inc()
	} else {
		ks.success.Inc()
	}
}

func (x *xdsStats) release() {
	for _, sc := range x.scopes {
		sc.Release()
	}
}
