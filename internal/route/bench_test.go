package route

import (
	"fmt"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// bigTable returns a table with n routes in one virtual host (plus a few others), mixing
// prefix, exact, regex, template and header matches the way large ingress configs do: every
// service gets a prefix route, some an exact health route, a regex versioned route, and a
// canary route gated on a header. The last routes are what the benchmarks hit.
func bigTable(tb testing.TB, n int) *Table {
	tb.Helper()
	var routes []*model.Route
	for i := 0; len(routes) < n; i++ {
		svc := fmt.Sprintf("/svc%d", i)
		cands := []*model.Route{
			{Name: fmt.Sprintf("canary-%d", i), Match: model.RouteMatch{PathKind: model.PathPrefix, Path: svc + "/",
				Headers: []model.HeaderMatcher{{Name: "x-canary", String: model.StringMatcher{Kind: model.StringExact, Value: "true"}}}},
				Route: &model.RouteAction{Cluster: fmt.Sprintf("svc%d-canary", i)}},
			{Name: fmt.Sprintf("health-%d", i), Match: model.RouteMatch{PathKind: model.PathExact, Path: svc + "/healthz"},
				DirectResponse: &model.DirectResponseAction{Status: 200}},
			{Name: fmt.Sprintf("regex-%d", i), Match: model.RouteMatch{PathKind: model.PathRegex, Path: svc + `/v[0-9]+/items/[0-9]+`},
				Route: &model.RouteAction{Cluster: fmt.Sprintf("svc%d-items", i)}},
			{Name: fmt.Sprintf("prefix-%d", i), Match: model.RouteMatch{PathKind: model.PathPrefix, Path: svc + "/"},
				Route: &model.RouteAction{Cluster: fmt.Sprintf("svc%d", i), PrefixRewrite: "/"}},
		}
		for _, r := range cands {
			if len(routes) < n {
				routes = append(routes, r)
			}
		}
	}
	rc := &model.RouteConfig{Name: "bench", VirtualHosts: []*model.VirtualHost{
		{Name: "other", Domains: []string{"other.example.com", "*.other.example.com"}, Routes: []*model.Route{directRoute("o", prefix("/"))}},
		{Name: "main", Domains: []string{"api.example.com", "*.api.example.com"}, Routes: routes},
		{Name: "default", Domains: []string{"*"}, Routes: []*model.Route{directRoute("d", prefix("/"))}},
	}}
	return mustCompile(tb, rc)
}

// lastRoutes returns requests hitting the last service of a bigTable of n routes: one per kind.
func lastRequests(n int) map[string]*header.Map {
	last := (n - 1) / 4
	svc := fmt.Sprintf("/svc%d", last)
	return map[string]*header.Map{
		"prefix": request("api.example.com", svc+"/orders/17?expand=true", "user-agent", "bench"),
		"exact":  request("API.example.com:443", svc+"/healthz", "user-agent", "bench"),
		"regex":  request("api.example.com", svc+"/v2/items/42", "user-agent", "bench"),
		"header": request("api.example.com", svc+"/orders", "user-agent", "bench", "x-canary", "true"),
	}
}

func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{1, 1000} {
		tbl := bigTable(b, n)
		reqs := lastRequests(n)
		for _, kind := range []string{"prefix", "exact", "regex", "header"} {
			h := reqs[kind]
			if n < 4 && kind != "header" {
				continue // a one-route table holds only the canary route
			}
			if _, e := tbl.Select(h); e == nil {
				b.Fatalf("%d routes, %s: no match", n, kind)
			}
			b.Run(fmt.Sprintf("routes=%d/%s", n, kind), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tbl.Select(h)
				}
			})
		}
	}
}

// BenchmarkSelectMiss measures a request that no route of the 1,000 matches: the index must
// rule them out without testing each.
// BenchmarkSelectScan is BenchmarkSelect for 1,000 routes with the path index turned off: the
// baseline the index is measured against.
func BenchmarkSelectScan(b *testing.B) {
	tbl := bigTable(b, 1000)
	tbl.vhosts[1].index = pathIndex{}
	reqs := lastRequests(1000)
	for _, kind := range []string{"prefix", "exact", "regex", "header"} {
		h := reqs[kind]
		b.Run(fmt.Sprintf("routes=1000/%s", kind), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tbl.Select(h)
			}
		})
	}
}

func BenchmarkSelectMiss(b *testing.B) {
	for _, n := range []int{1, 1000} {
		tbl := bigTable(b, n)
		h := request("api.example.com", "/nothing/here", "user-agent", "bench")
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tbl.Select(h)
			}
		})
	}
}

func BenchmarkPickCluster(b *testing.B) {
	tbl := mustCompile(b, oneHost(&model.Route{Name: "w", Match: prefix("/"), Route: &model.RouteAction{
		WeightedClusters: []model.WeightedCluster{{Name: "a", Weight: 10}, {Name: "b", Weight: 30}, {Name: "c", Weight: 60}},
	}}))
	h := request("h", "/")
	_, e := tbl.Select(h)
	b.ReportAllocs()
	var rnd uint64
	for b.Loop() {
		rnd++
		e.Forward.PickCluster(h, rnd)
	}
}

func BenchmarkRewriteRequest(b *testing.B) {
	tbl := mustCompile(b, oneHost(&model.Route{Name: "r", Match: prefix("/api/"), Route: &model.RouteAction{
		Cluster: "c", PrefixRewrite: "/", HostRewriteLiteral: "backend",
	}}))
	h := request("h", "/api/orders/17?expand=true")
	_, e := tbl.Select(h)
	orig := h.Path
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		h.Path = orig
		buf = e.RewriteRequest(h, buf)
	}
}

func BenchmarkApplyRequest(b *testing.B) {
	m, err := compileMutation(&model.HeaderMutation{
		RequestRemove: []string{"x-internal"},
		RequestAdd: []model.HeaderValueOption{
			{Name: "x-gateway", Value: "nuncio"},
			{Name: "x-env", Value: "prod", Action: model.OverwriteIfExistsOrAdd},
			{Name: "x-tenant", Value: "default", Action: model.AddIfAbsent},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	h := request("h", "/", "user-agent", "bench", "x-env", "dev")
	base := h.Clone()
	b.ReportAllocs()
	for b.Loop() {
		h.CopyFrom(base)
		m.ApplyRequest(h, nil)
	}
}

// BenchmarkCompile measures building a 1,000-route table (a quarter of them regexes), the cost
// an RDS update pays.
func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		bigTable(b, 1000)
	}
}
