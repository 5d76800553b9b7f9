package route

import (
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// fuzzTable exercises every matcher kind, wildcard domains and a port domain, with enough
// routes for the path index to be used.
func fuzzTable(tb testing.TB) *Table {
	routes := fillers(linearMax)
	routes = append(routes,
		directRoute("exact-ci", model.RouteMatch{PathKind: model.PathExact, Path: "/Exact", CaseInsensitive: true}),
		directRoute("sep", model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/sep"}),
		directRoute("regex", model.RouteMatch{PathKind: model.PathRegex, Path: `/r/[a-z]+/\d*`}),
		directRoute("tmpl", model.RouteMatch{PathKind: model.PathTemplate, Path: "/t/{id}/{rest=**}"}),
		directRoute("hdr", model.RouteMatch{PathKind: model.PathPrefix, Path: "/h", Headers: []model.HeaderMatcher{
			{Name: "x-a", String: model.StringMatcher{Kind: model.StringContains, Value: "Z", IgnoreCase: true}},
			{Name: "x-n", Kind: model.HeaderRange, RangeStart: -5, RangeEnd: 5, Invert: true, TreatMissingAsEmpty: true},
		}}),
		directRoute("query", model.RouteMatch{PathKind: model.PathPrefix, Path: "/q", QueryParameters: []model.QueryParameterMatcher{
			{Name: "a", String: &model.StringMatcher{Kind: model.StringSuffix, Value: "z"}}, {Name: "b", Present: true},
		}}),
		&model.Route{Name: "rw", Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/rw", CaseInsensitive: true},
			Route: &model.RouteAction{Cluster: "c", RegexRewrite: &model.RegexRewrite{Pattern: "(w+)", Substitution: `<\1>`}}},
		&model.Route{Name: "redir", Match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/redir"},
			Redirect: &model.RedirectAction{Scheme: "https", PrefixRewrite: "/x", StripQuery: true}},
		&model.Route{Name: "fwd", Match: prefix("/"),
			Route: &model.RouteAction{Cluster: "c", PrefixRewrite: "/p/"}},
	)
	return mustCompile(tb, &model.RouteConfig{Name: "fuzz", VirtualHosts: []*model.VirtualHost{
		{Name: "exact", Domains: []string{"a.example.com", "b.example.com:8080", "[::1]"}, Routes: routes},
		{Name: "suffix", Domains: []string{"*.example.com", "*-x.example.com"}, Routes: routes},
		{Name: "prefix", Domains: []string{"www.*"}, Routes: routes},
		{Name: "default", Domains: []string{"*"}, Routes: routes},
	}})
}

func FuzzSelect(f *testing.F) {
	f.Add("a.example.com", "/Exact?x", "x-a", "z", "x-n", "10")
	f.Add("B.EXAMPLE.COM:8080", "/t/1/2/3", "", "", "", "")
	f.Add("[::1]:443", "/r/abc/123", "x-a", "a,b", "x-a", "z")
	f.Add("www.foo", "/q?a=zz&b", "x-n", "-1", "", "")
	f.Add(":::", "/rw/www?q", "", "", "", "")
	f.Add(strings.Repeat("x", 500), "/redir/y?z", "", "", "", "")
	f.Add("", "", "", "", "", "")
	tbl := fuzzTable(f)
	f.Fuzz(func(t *testing.T, authority, path, n1, v1, n2, v2 string) {
		h := &header.Map{Method: "GET", Scheme: "http", Authority: authority, Path: path}
		if n1 != "" {
			h.AddFold(n1, v1)
		}
		if n2 != "" {
			h.AddFold(n2, v2)
		}
		vh, e := tbl.Select(h)
		if vh == nil {
			t.Fatal("the default virtual host must catch every authority")
		}
		// The index must agree with an in-order scan.
		p := pathOnly(h.Path)
		if got, want := vh.index.first(vh.routes, p, h), scan(vh.routes, p, h); got != want {
			t.Fatalf("index picked %d, scan picked %d", got, want)
		}
		if e == nil {
			return
		}
		switch e.Kind {
		case ActionForward:
			e.Forward.PickCluster(h, uint64(len(path)))
			e.RewriteRequest(h, nil)
		case ActionRedirect:
			if code, loc := e.Redirect(h, false, nil); code == 0 || !strings.HasPrefix(loc, "https://") {
				t.Fatalf("redirect = %d %q", code, loc)
			}
		}
	})
}
