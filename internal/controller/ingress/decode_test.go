package ingress

import (
	"testing"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

type resourcesForDecode xdsresources.Resources

// decodeResources runs the data plane's own decoders over the resources, so that a golden
// file can only hold configuration today's data plane accepts (optional filters it does not
// have included). The test imports the data plane; the controller package does not.
func decodeResources(t *testing.T, r resourcesForDecode) {
	t.Helper()
	for _, l := range r.Listeners {
		if _, err := decode.Listener(l, httpfilter.Default); err != nil {
			if hasPassthrough(l.GetName(), r) {
				continue // tcp_proxy is emitted for Envoy data planes only (--allow-unenforced)
			}
			t.Errorf("data plane rejects listener %s: %v", l.GetName(), err)
		}
	}
	for _, rc := range r.Routes {
		if _, err := decode.RouteConfig(rc, httpfilter.Default); err != nil {
			t.Errorf("data plane rejects route configuration %s: %v", rc.GetName(), err)
		}
	}
	for _, c := range r.Clusters {
		if _, err := decode.Cluster(c); err != nil {
			t.Errorf("data plane rejects cluster %s: %v", c.GetName(), err)
		}
	}
	for _, e := range r.Endpoints {
		if _, err := decode.Endpoints(e); err != nil {
			t.Errorf("data plane rejects endpoints %s: %v", e.GetClusterName(), err)
		}
	}
	for _, s := range r.Secrets {
		if _, err := decode.Secret(s); err != nil {
			t.Errorf("data plane rejects secret %s: %v", s.GetName(), err)
		}
	}
}

func hasPassthrough(listener string, r resourcesForDecode) bool {
	for _, l := range r.Listeners {
		if l.GetName() != listener {
			continue
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() == filterTCPProxy {
					return true
				}
			}
		}
	}
	return false
}
