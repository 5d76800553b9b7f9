package hcm

import (
	"context"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// tagFilter appends its tag to x-tags on the request and x-resp-tags on the response, so a
// test sees which filters ran on a stream and in what order. A per-route override is another
// tagFilter whose tag replaces the chain's.
type tagFilter struct {
	httpfilter.PassThrough
	tag string
}

func (*tagFilter) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseResponseHeaders
}

func (f *tagFilter) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	if o, ok := perRoute.(*tagFilter); ok {
		return o
	}
	return f
}

func (f *tagFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	h.Set("x-tags", h.Value("x-tags")+f.tag)
	return httpfilter.Continue
}

func (f *tagFilter) OnResponseHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	h.Set("x-resp-tags", h.Value("x-resp-tags")+f.tag)
	return httpfilter.Continue
}

// reflectFilter is a terminal filter answering 200 with the request's x-tags as x-tags.
type reflectFilter struct{ httpfilter.PassThrough }

func (reflectFilter) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

func (reflectFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return reflectFilter{}
}

func (reflectFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	s.Response.Status = 200
	s.Response.Set("x-tags", h.Value("x-tags"))
	s.Response.Set("content-length", "0")
	s.EncodeHeaders(true)
	return httpfilter.Stop
}

// TestPerRouteFilters runs a chain of an enabled filter A, a disabled filter B and a
// terminal filter over routes whose typed_per_filter_config enables, disables and overrides
// them, through a real listener.
func TestPerRouteFilters(t *testing.T) {
	direct := &model.DirectResponseAction{Status: 200}
	r := func(path string, pf map[string]any) *model.Route {
		return &model.Route{Name: path, Match: model.RouteMatch{PathKind: model.PathExact, Path: path}, DirectResponse: direct, TypedPerFilterConfig: pf}
	}
	m := defaultHCM()
	m.RouteConfig = &model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{
		{
			Name: "vh", Domains: []string{"vh-enables-b"},
			TypedPerFilterConfig: map[string]any{"b": model.EnabledFilter{}},
			Routes: []*model.Route{
				r("/", nil),
				r("/route-disables-b", map[string]any{"b": model.DisabledFilter{}}),
			},
		},
		{
			Name: "all", Domains: []string{"*"},
			Routes: []*model.Route{
				r("/plain", nil),
				r("/enable-b", map[string]any{"b": model.EnabledFilter{}}),
				r("/enable-b-with-config", map[string]any{"b": &tagFilter{tag: "B2"}}),
				r("/disable-a", map[string]any{"a": model.DisabledFilter{}}),
				r("/override-a", map[string]any{"a": &tagFilter{tag: "A2"}}),
			},
		},
	}}
	m.HTTPFilters = []model.HTTPFilter{
		{Name: "a", Config: &tagFilter{tag: "A"}},
		{Name: "b", Config: &tagFilter{tag: "B"}, Disabled: true},
		{Name: "reflect", Config: reflectFilter{}},
	}
	addr := testHCM(t, m, nil)
	for _, tc := range []struct {
		name, host, path  string
		wantReq, wantResp string
	}{
		{name: "chain as configured", host: "h", path: "/plain", wantReq: "A", wantResp: "A"},
		{name: "route enables a disabled filter", host: "h", path: "/enable-b", wantReq: "AB", wantResp: "BA"},
		{name: "route enables it with its own config", host: "h", path: "/enable-b-with-config", wantReq: "AB2", wantResp: "B2A"},
		{name: "route disables an enabled filter", host: "h", path: "/disable-a", wantReq: "", wantResp: ""},
		{name: "route overrides a config", host: "h", path: "/override-a", wantReq: "A2", wantResp: "A2"},
		{name: "virtual host enables", host: "vh-enables-b", path: "/", wantReq: "AB", wantResp: "BA"},
		{name: "route beats its virtual host", host: "vh-enables-b", path: "/route-disables-b", wantReq: "A", wantResp: "A"},
		{name: "no route: the chain's settings", host: "h", path: "/none", wantReq: "A", wantResp: "A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := exchange(t, addr, "GET "+tc.path+" HTTP/1.1\r\nHost: "+tc.host+"\r\n\r\n")
			if got := resp.Header.Get("X-Tags"); got != tc.wantReq {
				t.Errorf("request filters ran %q, want %q", got, tc.wantReq)
			}
			if got := resp.Header.Get("X-Resp-Tags"); got != tc.wantResp {
				t.Errorf("response filters ran %q, want %q", got, tc.wantResp)
			}
		})
	}
}

// nullDownstream discards the response: the chain benchmark measures dispatch, not a codec.
type nullDownstream struct{}

func (nullDownstream) writeHeaders(*stream, bool) error      { return nil }
func (nullDownstream) writeBody(*stream, []byte, bool) error { return nil }
func (nullDownstream) writeTrailers(*stream) error           { return nil }
func (nullDownstream) reset(*stream)                         {}

// passFilter takes part in every phase and passes everything on.
type passFilter struct{ httpfilter.PassThrough }

func (*passFilter) Phases() httpfilter.Phases { return 0x7f }

func (f *passFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return f }

// replyFilter is a terminal filter answering with headers and a body.
type replyFilter struct{ httpfilter.PassThrough }

func (*replyFilter) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

func (f *replyFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return f }

var replyBody = []byte("hello")

func (*replyFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	s.Response.Status = 200
	s.Response.Set("content-length", "5")
	s.EncodeHeaders(false)
	s.EncodeBody(replyBody, true)
	return httpfilter.Stop
}

// dispatchConfig is a connection manager with eight pass-through filters, half of them
// disabled in the chain and enabled by the route, in front of replyFilter.
func dispatchConfig(tb testing.TB) *Config {
	tb.Helper()
	m := &model.HTTPConnectionManager{StatPrefix: "bench", MaxRequestHeadersBytes: 60 << 10, MaxHeadersCount: 100}
	enable := map[string]any{}
	for _, name := range []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"} {
		disabled := name[1]%2 == 1
		m.HTTPFilters = append(m.HTTPFilters, model.HTTPFilter{Name: name, Config: &passFilter{}, Disabled: disabled})
		if disabled {
			enable[name] = model.EnabledFilter{}
		}
	}
	m.HTTPFilters = append(m.HTTPFilters, model.HTTPFilter{Name: "reply", Config: &replyFilter{}})
	m.RouteConfig = &model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*model.Route{{Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/"},
			DirectResponse: &model.DirectResponseAction{Status: 200}, TypedPerFilterConfig: enable}},
	}}}
	rt, err := route.Compile(m.RouteConfig, cluster.NewRef)
	if err != nil {
		tb.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	cfg, err := New(m, slot, Options{Stats: stats.NewStore()})
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// dispatchOne runs one request through the chain: route selection, filter creation, every
// filter's request and response phases, stream end.
func dispatchOne(cfg *Config) *stream {
	s := getStream(cfg, nullDownstream{})
	s.Request.Method, s.Request.Path, s.Request.Authority = "GET", "/x", "h"
	s.begin(context.Background())
	s.decodeHeaders(0, true)
	return s
}

func TestChainDispatchDoesNotAllocate(t *testing.T) {
	cfg := dispatchConfig(t)
	s := dispatchOne(cfg)
	if !s.respDone.Load() || s.Response.Status != 200 {
		t.Fatalf("response done=%v status=%d", s.respDone.Load(), s.Response.Status)
	}
	n := 0
	for _, f := range s.filters {
		if f != nil {
			n++
		}
	}
	if n != 9 {
		t.Fatalf("%d filters made, want 9 (the route enables the disabled ones)", n)
	}
	s.release()
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	if a := testing.AllocsPerRun(1000, func() { dispatchOne(cfg).release() }); a != 0 {
		t.Fatalf("%v allocations per request, want 0", a)
	}
}

func BenchmarkChainDispatch(b *testing.B) {
	cfg := dispatchConfig(b)
	b.ReportAllocs()
	for b.Loop() {
		dispatchOne(cfg).release()
	}
}
