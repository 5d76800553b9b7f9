package route

import (
	"fmt"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// request builds a request header map; kv alternates names and values.
func request(authority, path string, kv ...string) *header.Map {
	h := &header.Map{Method: "GET", Scheme: "http", Authority: authority, Path: path}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func mustCompile(tb testing.TB, rc *model.RouteConfig) *Table {
	tb.Helper()
	t, err := Compile(rc, nil)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return t
}

func directRoute(name string, m model.RouteMatch) *model.Route {
	return &model.Route{Name: name, Match: m, DirectResponse: &model.DirectResponseAction{Status: 200}}
}

func prefix(p string) model.RouteMatch { return model.RouteMatch{PathKind: model.PathPrefix, Path: p} }

func oneHost(routes ...*model.Route) *model.RouteConfig {
	return &model.RouteConfig{
		Name:         "rc",
		VirtualHosts: []*model.VirtualHost{{Name: "vh", Domains: []string{"*"}, Routes: routes}},
	}
}

// fillers returns n routes that never match a request, so that a route placed after them is
// found through the path index rather than a linear scan.
func fillers(n int) []*model.Route {
	rs := make([]*model.Route, n)
	for i := range rs {
		rs[i] = directRoute(fmt.Sprintf("filler-%d", i), model.RouteMatch{
			PathKind: model.PathExact, Path: fmt.Sprintf("/__filler__/%d", i),
		})
	}
	return rs
}

func fields(h *header.Map) []string {
	var out []string
	for _, f := range h.Fields() {
		out = append(out, f.Name+"="+f.Value)
	}
	return out
}

func entryName(e *Entry) string {
	if e == nil {
		return "<nil>"
	}
	return e.Name
}

func vhostName(v *VirtualHost) string {
	if v == nil {
		return "<nil>"
	}
	return v.Name
}
