package route

import (
	"fmt"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Mirror is one compiled request_mirror_policies entry.
type Mirror struct {
	Cluster string
	Ref     *cluster.Ref
	// numerator/denominator is the share of requests mirrored.
	numerator, denominator uint64
}

// Sampled reports whether a request with the random value rnd is mirrored.
func (m *Mirror) Sampled(rnd uint64) bool {
	if m.numerator >= m.denominator {
		return true
	}
	return rnd%m.denominator < m.numerator
}

func (c *compiler) mirrors(ps []model.MirrorPolicy) ([]Mirror, error) {
	var out []Mirror
	for i, p := range ps {
		if p.Cluster == "" {
			return nil, fmt.Errorf("request_mirror_policies[%d].cluster: required", i)
		}
		m := Mirror{Cluster: p.Cluster, Ref: c.ref(p.Cluster), numerator: uint64(p.Numerator), denominator: uint64(p.Denominator)}
		if m.denominator == 0 {
			m.numerator, m.denominator = 1, 1
		}
		out = append(out, m)
	}
	return out, nil
}
