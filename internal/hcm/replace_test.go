package hcm

import (
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
)

// wrapFilter replaces bodies with a longer one (Stream.ReplaceBody): the request body, whole
// (it holds the headers until the body is complete), when the request has x-wrap; each
// response body chunk when it has x-wrap-response.
type wrapFilter struct {
	httpfilter.PassThrough
	buf []byte
}

func (*wrapFilter) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody | httpfilter.PhaseResponseHeaders | httpfilter.PhaseResponseBody
}

func (*wrapFilter) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return &wrapFilter{}
}

func (*wrapFilter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if h.Has("x-wrap") {
		return httpfilter.StopAndBuffer
	}
	return httpfilter.Continue
}

func (f *wrapFilter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if s.Request.Has("x-wrap") {
		f.buf = append(append(append(f.buf[:0], '['), chunk...), ']')
		s.ReplaceBody(f.buf)
	}
	return httpfilter.Continue
}

func (*wrapFilter) OnResponseHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	if s.Request.Has("x-wrap-response") {
		h.Del("content-length")
	}
	return httpfilter.Continue
}

func (f *wrapFilter) OnResponseBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	if s.Request.Has("x-wrap-response") {
		f.buf = append(append(append(f.buf[:0], '<'), chunk...), '>')
		s.ReplaceBody(f.buf)
	}
	return httpfilter.Continue
}

func TestReplaceBody(t *testing.T) {
	m := defaultHCM()
	m.HTTPFilters = []model.HTTPFilter{{Name: "wrap", Config: &wrapFilter{}}, {Name: "echo", Config: echoConfig{}}}
	addr := testHCM(t, m, nil)
	for _, tc := range []struct {
		name, raw string
		want      []string
	}{
		{
			name: "request body replaced whole",
			raw:  "POST / HTTP/1.1\r\nHost: a\r\nx-wrap: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
			want: []string{"body=[abcdef]"},
		},
		{
			name: "request body untouched without replacement",
			raw:  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
			want: []string{"body=abc\n"},
		},
		{
			name: "response chunks replaced",
			raw:  "POST /stream HTTP/1.1\r\nHost: a\r\nx-wrap-response: 1\r\nContent-Length: 3\r\n\r\nabc",
			want: []string{"<method=POST", "body=abc\n>", "<tail\n>"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := exchange(t, addr, tc.raw)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %q lacks %q", body, w)
				}
			}
		})
	}
}

// clusterUser records the resolver the connection manager hands it.
type clusterUser struct {
	passFilter
	got func(string) *cluster.Ref
}

func (c *clusterUser) WithClusters(resolve func(string) *cluster.Ref) httpfilter.Config {
	return &clusterUser{got: resolve}
}

func TestClusterConfigGetsResolver(t *testing.T) {
	m := defaultHCM()
	m.RouteConfig = &model.RouteConfig{Name: "r", VirtualHosts: []*model.VirtualHost{{Name: "all", Domains: []string{"*"}}}}
	m.HTTPFilters = []model.HTTPFilter{{Name: "user", Config: &clusterUser{}}, {Name: "echo", Config: echoConfig{}}}
	ref := cluster.NewRef("c")
	rt, err := route.Compile(m.RouteConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	slot := new(route.Slot)
	slot.Store(rt)
	cfg, err := New(m, slot, Options{Clusters: func(name string) *cluster.Ref {
		if name == "c" {
			return ref
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := cfg.chain.filters[0].cfg.(*clusterUser)
	if !ok || u.got == nil || u.got("c") != ref {
		t.Fatalf("chain runs %T without the resolver", cfg.chain.filters[0].cfg)
	}
}
