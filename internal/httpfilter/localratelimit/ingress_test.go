package localratelimit_test

import (
	"net/netip"
	"os"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	lrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/localratelimit"
)

// TestIngressLimitRPS holds the filter to what the controller emits for the Ingress
// annotations limit-rps: "10" and limit-burst-multiplier: "3" (the ingress golden file): the
// chain's disabled filter and the route's FilterConfig decode, and each client address gets
// 30 requests at once, then 429.
func TestIngressLimitRPS(t *testing.T) {
	data, err := os.ReadFile("../../controller/ingress/testdata/rate-limit.out.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		RouteConfigurations []any `json:"route_configurations"`
	}
	if err := yaml.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	var override *lrlv3.LocalRateLimit
	for _, rc := range out.RouteConfigurations {
		y, _ := yaml.Marshal(rc)
		m := &routev3.RouteConfiguration{}
		if err := envoyconfig.Unmarshal(y, m); err != nil {
			t.Fatal(err)
		}
		for _, vh := range m.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				if a, ok := r.GetTypedPerFilterConfig()[localratelimit.Name]; ok {
					fc := &routev3.FilterConfig{}
					if err := a.UnmarshalTo(fc); err != nil {
						t.Fatal(err)
					}
					override = &lrlv3.LocalRateLimit{}
					if err := fc.GetConfig().UnmarshalTo(override); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	if override == nil {
		t.Fatal("no route enables local_ratelimit in the golden file")
	}
	chain, err := localratelimit.Factory{}.NewConfig(&lrlv3.LocalRateLimit{StatPrefix: "local_rate_limit"})
	if err != nil {
		t.Fatal(err)
	}
	perRoute, err := localratelimit.Factory{}.NewOverride(override)
	if err != nil {
		t.Fatal(err)
	}
	r := &replies{}
	for _, tc := range []struct {
		name   string
		client string
	}{
		{name: "first client", client: "192.0.2.1:1000"},
		{name: "second client has its own bucket", client: "192.0.2.2:1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStream(r)
			s.Downstream.RemoteAddr = netip.MustParseAddrPort(tc.client)
			allowed := 0
			for range 41 {
				r.code = 0
				f := chain.NewFilter(s, perRoute)
				f.OnRequestHeaders(s, &s.Request, true)
				f.OnStreamDone(s)
				if r.code == 0 {
					allowed++
				} else if r.code != 429 {
					t.Fatalf("status %d, want 429", r.code)
				}
			}
			// 30 at once (10 rps × burst multiplier 3), and 10 more if a second began meanwhile.
			if allowed < 30 || allowed > 40 {
				t.Errorf("%d of 41 requests allowed at once, want 30 (10 rps × burst multiplier 3)", allowed)
			}
		})
	}
}
