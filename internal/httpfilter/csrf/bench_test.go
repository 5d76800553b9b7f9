package csrf

import (
	"context"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	csrfv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/csrf/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// BenchmarkSameOriginPOST is a POST whose Origin is the request's host.
func BenchmarkSameOriginPOST(b *testing.B) {
	c, err := Factory{}.NewConfig(&csrfv3.CsrfPolicy{FilterEnabled: &corev3.RuntimeFractionalPercent{
		DefaultValue: &typev3.FractionalPercent{Numerator: 100},
	}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := c.(*Config).WithScope(stats.NewStore().Scope("http.bench"))
	s := &httpfilter.Stream{Ctx: context.Background()}
	s.Request.Method, s.Request.Path, s.Request.Authority = "POST", "/form", "app.example"
	s.Request.Add("origin", "https://app.example")
	b.ReportAllocs()
	for b.Loop() {
		if cfg.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("refused")
		}
	}
}
