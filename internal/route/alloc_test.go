package route

import (
	"testing"

	"github.com/nuncio-gw/nuncio/internal/model"
)

func assertNoAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run, want 0", name, n)
	}
}

func TestSelectDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	for _, n := range []int{4, 1000} {
		tbl := bigTable(t, n)
		for kind, h := range lastRequests(n) {
			if _, e := tbl.Select(h); e == nil {
				t.Fatalf("%d routes, %s: no match", n, kind)
			}
			assertNoAllocs(t, kind, func() { tbl.Select(h) })
		}
	}

	q := model.RouteMatch{PathKind: model.PathPrefix, Path: "/",
		QueryParameters: []model.QueryParameterMatcher{
			{Name: "debug", String: &model.StringMatcher{Kind: model.StringExact, Value: "1"}},
			{Name: "trace", Present: true},
		}}
	tmpl := model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}/files/{path=**}"}
	hdr := model.RouteMatch{PathKind: model.PathPrefix, Path: "/", Headers: []model.HeaderMatcher{
		{Name: "x-v", String: model.StringMatcher{Kind: model.StringContains, Value: "MID", IgnoreCase: true}},
		{Name: "x-n", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 100},
		{Name: ":method", String: model.StringMatcher{Kind: model.StringExact, Value: "GET"}},
		{Name: "x-absent", Kind: model.HeaderPresent, Present: false},
	}}
	tbl := mustCompile(t, oneHost(append(fillers(20),
		directRoute("query", q), directRoute("tmpl", tmpl), directRoute("hdr", hdr))...))
	for name, h := range map[string]struct {
		authority, path string
		kv              []string
	}{
		"query":    {authority: "Host.Example", path: "/x?a=b&debug=1&trace"},
		"template": {authority: "h", path: "/users/1/files/a/b"},
		"headers":  {authority: "h", path: "/p", kv: []string{"x-v", "amidst", "x-n", "42"}},
		"miss":     {authority: "h", path: "/__filler__/x"},
	} {
		req := request(h.authority, h.path, h.kv...)
		assertNoAllocs(t, name, func() { tbl.Select(req) })
	}
}

func TestPickClusterDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	tbl := mustCompile(t, oneHost(
		&model.Route{Name: "w", Match: prefix("/w"), Route: &model.RouteAction{
			WeightedClusters: []model.WeightedCluster{{Name: "a", Weight: 1}, {Name: "b", Weight: 2}}}},
		&model.Route{Name: "h", Match: prefix("/h"), Route: &model.RouteAction{ClusterHeader: "x-cluster"}},
		&model.Route{Name: "c", Match: prefix("/c"), Route: &model.RouteAction{Cluster: "a"}},
	))
	for _, path := range []string{"/w", "/h", "/c"} {
		h := request("h", path, "x-cluster", "b")
		_, e := tbl.Select(h)
		var rnd uint64
		assertNoAllocs(t, path, func() {
			rnd++
			if ref, _, _ := e.Forward.PickCluster(h, rnd); ref == nil {
				t.Fatal("no cluster")
			}
		})
	}
}

func TestRewriteRequestDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	tbl := mustCompile(t, oneHost(&model.Route{Name: "r", Match: prefix("/api/"), Route: &model.RouteAction{
		Cluster: "c", PrefixRewrite: "/v2/", HostRewriteLiteral: "backend"}}))
	h := request("h", "/api/orders?x=1")
	_, e := tbl.Select(h)
	orig := h.Path
	buf := make([]byte, 0, 256)
	assertNoAllocs(t, "prefix rewrite", func() {
		h.Path = orig
		buf = e.RewriteRequest(h, buf)
	})
	if h.Path != "/v2/orders?x=1" || h.Authority != "backend" {
		t.Fatalf("rewrote to %q %q", h.Authority, h.Path)
	}
}

func TestApplyRequestDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("instrumentation allocates")
	}
	m, err := compileMutation(&model.HeaderMutation{
		RequestRemove: []string{"x-internal"},
		RequestAdd: []model.HeaderValueOption{
			{Name: "x-gateway", Value: "nuncio"},
			{Name: "x-env", Value: "prod", Action: model.OverwriteIfExistsOrAdd},
			{Name: "x-tenant", Value: "default", Action: model.AddIfAbsent},
			{Name: "x-only", Value: "1", Action: model.OverwriteIfExists},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := request("h", "/", "user-agent", "t", "x-env", "dev", "x-internal", "secret")
	base := h.Clone()
	h.CopyFrom(base)
	m.ApplyRequest(h, nil) // grow the field slice once
	assertNoAllocs(t, "ApplyRequest", func() {
		h.CopyFrom(base)
		m.ApplyRequest(h, nil)
	})
}
