package route

import (
	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
)

// PickCluster chooses the upstream cluster for a request.
//
// For cluster routes it returns the slot resolved at compile time. For weighted_clusters it
// picks by weight with rnd (Envoy's rnd % total over the running sums, so callers pass a
// uniformly random value or a stable hash) and also returns that cluster's header mutation, or
// nil. For cluster_header routes it reads the header; ref is nil when the header is missing or
// names no cluster known at compile time nor to the resolve func (see Compile), and the router
// answers with ClusterNotFoundCode. name is the chosen cluster's name (for cluster_header, the
// header value, which aliases h).
func (f *Forward) PickCluster(h *header.Map, rnd uint64) (ref *cluster.Ref, name string, hm *Mutation) {
	switch {
	case f.ref != nil || f.cluster != "":
		return f.ref, f.cluster, nil
	case len(f.weighted) > 0:
		sel := rnd % f.total
		ws := f.weighted
		for i := range ws {
			if sel < ws[i].end {
				return ws[i].ref, ws[i].name, ws[i].headers
			}
		}
		last := &ws[len(ws)-1]
		return last.ref, last.name, last.headers
	case f.ClusterHeader != "":
		v, ok := h.Get(f.ClusterHeader)
		if !ok || v == "" {
			return nil, "", nil
		}
		if r, ok := f.byName[v]; ok {
			return r, v, nil
		}
		if f.resolve != nil {
			return f.resolve(v), v, nil
		}
		return nil, v, nil
	}
	return nil, "", nil
}

// ClusterName is the statically configured cluster ("" for weighted_clusters and
// cluster_header routes).
func (f *Forward) ClusterName() string { return f.cluster }
