package cors

import (
	"context"
	"net"
	"testing"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// sink stands in for the connection manager: the benchmark measures the filter alone.
type sink struct{}

func (sink) EncodeHeaders(*httpfilter.Stream, bool)             {}
func (sink) EncodeBody(*httpfilter.Stream, []byte, bool)        {}
func (sink) EncodeTrailers(*httpfilter.Stream)                  {}
func (sink) ClearRouteCache(*httpfilter.Stream)                 {}
func (sink) ResponseStarted(*httpfilter.Stream) bool            { return false }
func (sink) Hijack(*httpfilter.Stream) (net.Conn, []byte, bool) { return nil, nil, false }
func (sink) SendLocalReply(*httpfilter.Stream, int, string, httpfilter.ResponseFlags, string) {
}

func benchSetup(b *testing.B) (httpfilter.Config, *Policy, *httpfilter.Stream) {
	pol, err := NewPolicy(&corsv3.CorsPolicy{
		AllowOriginStringMatch: []*matcherv3.StringMatcher{
			{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "https://a.example"}},
			{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".b.example"}, IgnoreCase: true},
		},
		AllowMethods: "GET, POST", AllowHeaders: "x-a", ExposeHeaders: "x-exp", MaxAge: "600",
		AllowCredentials: wrapperspb.Bool(true),
	})
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := Factory{}.NewConfig(&corsv3.Cors{})
	st := stats.NewStore()
	cfg = cfg.(*Config).WithScope(st.Scope("http.bench"))
	s := &httpfilter.Stream{Ctx: context.Background()}
	s.SetSink(sink{})
	return cfg, pol, s
}

// BenchmarkPreflight is an allowed origin's preflight, answered by the filter.
func BenchmarkPreflight(b *testing.B) {
	cfg, pol, s := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Request.Reset()
		s.Request.Method, s.Request.Path = "OPTIONS", "/x"
		s.Request.Add("origin", "https://x.B.example")
		s.Request.Add("access-control-request-method", "POST")
		f := cfg.NewFilter(s, pol)
		if f.OnRequestHeaders(s, &s.Request, true) != httpfilter.Stop {
			b.Fatal("preflight not answered")
		}
	}
}

// BenchmarkSimpleRequest is an allowed origin's GET: the request passes and the response gets
// its Access-Control-* headers.
func BenchmarkSimpleRequest(b *testing.B) {
	cfg, pol, s := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Request.Reset()
		s.Request.Method, s.Request.Path = "GET", "/x"
		s.Request.Add("origin", "https://a.example")
		s.Response.Reset()
		s.Response.Status = 200
		s.Response.Add("content-type", "text/plain")
		f := cfg.NewFilter(s, pol)
		if f.OnRequestHeaders(s, &s.Request, true) != httpfilter.Continue {
			b.Fatal("request stopped")
		}
		f.OnResponseHeaders(s, &s.Response, true)
	}
}

// TestNoAllocs keeps the shared-filter path allocation-free.
func TestNoAllocs(t *testing.T) {
	b := &testing.B{}
	cfg, pol, s := benchSetup(b)
	n := testing.AllocsPerRun(100, func() {
		s.Request.Reset()
		s.Request.Method = "OPTIONS"
		s.Request.Add("origin", "https://a.example")
		s.Request.Add("access-control-request-method", "POST")
		s.Response.Reset()
		f := cfg.NewFilter(s, pol)
		f.OnRequestHeaders(s, &s.Request, true)
		f.OnResponseHeaders(s, &s.Response, true)
	})
	if n != 0 {
		t.Errorf("%v allocations per preflight", n)
	}
}

var _ httpfilter.Sink = sink{}
