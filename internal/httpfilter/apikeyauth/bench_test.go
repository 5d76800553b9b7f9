package apikeyauth

import (
	"context"
	"fmt"
	"testing"

	apikeyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/api_key_auth/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// BenchmarkHeaderKey is a request with a valid key in a header, among 1000 credentials.
func BenchmarkHeaderKey(b *testing.B) {
	a := &apikeyv3.ApiKeyAuth{
		KeySources: []*apikeyv3.KeySource{{Header: "x-api-key"}},
		Forwarding: &apikeyv3.Forwarding{Header: "x-client"},
	}
	for i := 0; i < 1000; i++ {
		a.Credentials = append(a.Credentials, &apikeyv3.Credential{Key: fmt.Sprintf("key-%04d", i), Client: fmt.Sprintf("client-%d", i)})
	}
	c, err := Factory{}.NewConfig(a)
	if err != nil {
		b.Fatal(err)
	}
	cfg := c.(*Config).WithScope(stats.NewStore().Scope("http.bench"))
	s := &httpfilter.Stream{Ctx: context.Background()}
	s.Request.Method, s.Request.Path = "GET", "/x"
	s.Request.Add("x-api-key", "key-0777")
	b.ReportAllocs()
	for b.Loop() {
		if cfg.NewFilter(s, nil).OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("denied")
		}
	}
}
