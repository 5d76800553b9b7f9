package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

func TestDomainPrecedence(t *testing.T) {
	vhosts := []*model.VirtualHost{
		{Name: "exact", Domains: []string{"www.example.com", "Mixed.Example.COM"}},
		{Name: "suffix-short", Domains: []string{"*.example.com"}},
		{Name: "suffix-long", Domains: []string{"*.api.example.com"}},
		{Name: "suffix-dash", Domains: []string{"*-bar.foo.com"}},
		{Name: "prefix-short", Domains: []string{"foo.*"}},
		{Name: "prefix-long", Domains: []string{"foo.bar.*"}},
		{Name: "port", Domains: []string{"ported.example.com:8080"}},
		{Name: "v6", Domains: []string{"[::1]"}},
		{Name: "default", Domains: []string{"*"}},
	}
	for _, vh := range vhosts {
		vh.Routes = []*model.Route{directRoute(vh.Name, prefix("/"))}
	}
	tbl := mustCompile(t, &model.RouteConfig{Name: "rc", VirtualHosts: vhosts})

	tests := []struct {
		name      string
		authority string
		want      string
	}{
		{name: "exact", authority: "www.example.com", want: "exact"},
		{name: "exact case-insensitive", authority: "WWW.Example.Com", want: "exact"},
		{name: "exact domain configured mixed case", authority: "mixed.example.com", want: "exact"},
		{name: "exact with port stripped", authority: "www.example.com:443", want: "exact"},
		{name: "exact beats suffix", authority: "www.example.com", want: "exact"},
		{name: "suffix", authority: "a.example.com", want: "suffix-short"},
		{name: "longest suffix wins", authority: "x.api.example.com", want: "suffix-long"},
		{name: "suffix needs one char", authority: ".example.com", want: "default"},
		{name: "suffix does not match bare domain", authority: "example.com", want: "default"},
		{name: "dash suffix", authority: "baz-bar.foo.com", want: "suffix-dash"},
		{name: "dash suffix needs one char", authority: "-bar.foo.com", want: "default"},
		{name: "suffix beats prefix", authority: "foo.example.com", want: "suffix-short"},
		{name: "prefix", authority: "foo.net", want: "prefix-short"},
		{name: "longest prefix wins", authority: "foo.bar.net", want: "prefix-long"},
		{name: "prefix needs one char", authority: "foo.", want: "default"},
		{name: "prefix with port", authority: "foo.net:9000", want: "prefix-short"},
		{name: "domain naming a port", authority: "ported.example.com:8080", want: "port"},
		{name: "domain naming a port, other port", authority: "ported.example.com:9090", want: "suffix-short"},
		{name: "domain naming a port, no port", authority: "ported.example.com", want: "suffix-short"},
		{name: "ipv6 with port", authority: "[::1]:8080", want: "v6"},
		{name: "ipv6 without port", authority: "[::1]", want: "v6"},
		{name: "default", authority: "other.org", want: "default"},
		{name: "empty authority", authority: "", want: "default"},
		{name: "long authority", authority: strings.Repeat("a", 400) + ".example.com", want: "suffix-short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vh, e := tbl.Select(request(tc.authority, "/"))
			if got := vhostName(vh); got != tc.want {
				t.Fatalf("virtual host = %s, want %s", got, tc.want)
			}
			if entryName(e) != tc.want {
				t.Fatalf("route = %s, want %s", entryName(e), tc.want)
			}
		})
	}
}

func TestNoDefaultVirtualHost(t *testing.T) {
	tbl := mustCompile(t, &model.RouteConfig{VirtualHosts: []*model.VirtualHost{
		{Name: "a", Domains: []string{"a.com"}, Routes: []*model.Route{directRoute("r", prefix("/"))}},
	}})
	vh, e := tbl.Select(request("b.com", "/"))
	if vh != nil || e != nil {
		t.Fatalf("Select = %s, %s; want nil, nil", vhostName(vh), entryName(e))
	}
	vh, e = tbl.Select(request("a.com", "/"))
	if vhostName(vh) != "a" || entryName(e) != "r" {
		t.Fatalf("Select = %s, %s; want a, r", vhostName(vh), entryName(e))
	}
}

func TestPathMatch(t *testing.T) {
	tests := []struct {
		name  string
		match model.RouteMatch
		path  string
		want  bool
	}{
		{name: "prefix", match: prefix("/api"), path: "/api/v1", want: true},
		{name: "prefix is not segment aware", match: prefix("/api"), path: "/apix", want: true},
		{name: "prefix miss", match: prefix("/api"), path: "/ap", want: false},
		{name: "prefix case-sensitive", match: prefix("/api"), path: "/API/v1", want: false},
		{name: "prefix case-insensitive", match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/Api", CaseInsensitive: true}, path: "/aPI/v1", want: true},
		{name: "prefix ignores query", match: prefix("/a?b"), path: "/a?b", want: false},
		{name: "root prefix", match: prefix("/"), path: "/anything?x", want: true},
		{name: "exact", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/b"}, path: "/a/b", want: true},
		{name: "exact ignores query", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/b"}, path: "/a/b?x=1", want: true},
		{name: "exact ignores fragment", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/b"}, path: "/a/b#frag", want: true},
		{name: "exact trailing slash differs", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/b"}, path: "/a/b/", want: false},
		{name: "exact case-insensitive", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/B", CaseInsensitive: true}, path: "/A/b", want: true},
		{name: "exact case-sensitive", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a/B"}, path: "/A/b", want: false},
		{name: "regex full match", match: model.RouteMatch{PathKind: model.PathRegex, Path: "/b[io]t"}, path: "/bit", want: true},
		{name: "regex needs full match", match: model.RouteMatch{PathKind: model.PathRegex, Path: "/b[io]t"}, path: "/bitx", want: false},
		{name: "regex needs full match at start", match: model.RouteMatch{PathKind: model.PathRegex, Path: "b[io]t"}, path: "/bit", want: false},
		{name: "regex ignores query", match: model.RouteMatch{PathKind: model.PathRegex, Path: "/v[0-9]+/.*"}, path: "/v2/x?y=1", want: true},
		{name: "regex alternation anchored as a whole", match: model.RouteMatch{PathKind: model.PathRegex, Path: "/a|/b"}, path: "/a/b", want: false},
		{name: "regex case fold flag", match: model.RouteMatch{PathKind: model.PathRegex, Path: "(?i)/admin/.*"}, path: "/ADMIN/x", want: true},
		{name: "separated prefix end", match: model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/api"}, path: "/api", want: true},
		{name: "separated prefix slash", match: model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/api"}, path: "/api/x", want: true},
		{name: "separated prefix query", match: model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/api"}, path: "/api?x", want: true},
		{name: "separated prefix other char", match: model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/api"}, path: "/apix", want: false},
		{name: "separated prefix case-insensitive", match: model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: "/api", CaseInsensitive: true}, path: "/API/x", want: true},
		{name: "template variables", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}/files/{path=**}"}, path: "/users/42/files/a/b.txt", want: true},
		{name: "template text glob empty", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}/files/{path=**}"}, path: "/users/42/files/", want: true},
		{name: "template text glob needs slash", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}/files/{path=**}"}, path: "/users/42/files", want: false},
		{name: "template variable is one segment", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}"}, path: "/users/a/b", want: false},
		{name: "template variable not empty", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}"}, path: "/users/", want: false},
		{name: "template ignores query", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/users/{id}"}, path: "/users/7?x=1", want: true},
		{name: "template glob and suffix", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/videos/*/{file}.mp4"}, path: "/videos/hd/cat.mp4", want: true},
		{name: "template suffix mismatch", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/videos/*/{file}.mp4"}, path: "/videos/hd/cat.mkv", want: false},
		{name: "template literal is literal", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/a.b/*"}, path: "/axb/c", want: false},
		{name: "template star excludes equals", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/k/*"}, path: "/k/a=b", want: false},
		{name: "template double star anywhere below", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/**"}, path: "/a/b/c", want: true},
		{name: "template variable with literal match", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/{v=api/*}/x"}, path: "/api/v1/x", want: true},
		{name: "template trailing slash", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/a/*/"}, path: "/a/b/", want: true},
		{name: "template trailing slash required", match: model.RouteMatch{PathKind: model.PathTemplate, Path: "/a/*/"}, path: "/a/b", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, indexed := range []bool{false, true} {
				var routes []*model.Route
				if indexed {
					routes = fillers(linearMax + 4)
				}
				routes = append(routes, directRoute("target", tc.match))
				tbl := mustCompile(t, oneHost(routes...))
				_, e := tbl.Select(request("h", tc.path))
				if got := e != nil && e.Name == "target"; got != tc.want {
					t.Fatalf("indexed=%v: matched %s, want match=%v", indexed, entryName(e), tc.want)
				}
			}
		})
	}
}

func TestHeaderMatch(t *testing.T) {
	str := func(kind model.StringMatchKind, v string, fold bool) model.StringMatcher {
		return model.StringMatcher{Kind: kind, Value: v, IgnoreCase: fold}
	}
	tests := []struct {
		name    string
		matcher model.HeaderMatcher
		headers []string
		want    bool
	}{
		{name: "exact", matcher: model.HeaderMatcher{Name: "x-env", String: str(model.StringExact, "prod", false)}, headers: []string{"x-env", "prod"}, want: true},
		{name: "exact mismatch", matcher: model.HeaderMatcher{Name: "x-env", String: str(model.StringExact, "prod", false)}, headers: []string{"x-env", "PROD"}, want: false},
		{name: "exact ignore case", matcher: model.HeaderMatcher{Name: "x-env", String: str(model.StringExact, "Prod", true)}, headers: []string{"x-env", "pROD"}, want: true},
		{name: "matcher name case-insensitive", matcher: model.HeaderMatcher{Name: "X-Env", String: str(model.StringExact, "prod", false)}, headers: []string{"x-env", "prod"}, want: true},
		{name: "exact empty value", matcher: model.HeaderMatcher{Name: "x-env", String: str(model.StringExact, "", false)}, headers: []string{"x-env", "prod"}, want: false},
		{name: "prefix", matcher: model.HeaderMatcher{Name: "ua", String: str(model.StringPrefix, "curl/", false)}, headers: []string{"ua", "curl/8.0"}, want: true},
		{name: "prefix ignore case", matcher: model.HeaderMatcher{Name: "ua", String: str(model.StringPrefix, "CURL/", true)}, headers: []string{"ua", "curl/8.0"}, want: true},
		{name: "suffix", matcher: model.HeaderMatcher{Name: "ua", String: str(model.StringSuffix, "/8.0", false)}, headers: []string{"ua", "curl/8.0"}, want: true},
		{name: "suffix ignore case", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringSuffix, "ABC", true)}, headers: []string{"h", "xxabc"}, want: true},
		{name: "contains", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringContains, "mid", false)}, headers: []string{"h", "amidst"}, want: true},
		{name: "contains ignore case", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringContains, "MiD", true)}, headers: []string{"h", "aMIdst"}, want: true},
		{name: "contains miss", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringContains, "zz", false)}, headers: []string{"h", "amidst"}, want: false},
		{name: "regex full", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringRegex, `\d{3}`, false)}, headers: []string{"h", "123"}, want: true},
		{name: "regex needs full match", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringRegex, `\d{3}`, false)}, headers: []string{"h", "1234"}, want: false},
		{name: "regex inverted", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringRegex, `\d{3}`, false), Invert: true}, headers: []string{"h", "1234"}, want: true},
		{name: "present", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: true}, headers: []string{"h", ""}, want: true},
		{name: "present missing", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: true}, want: false},
		{name: "present false missing", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: false}, want: true},
		{name: "present false present", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: false}, headers: []string{"h", "v"}, want: false},
		{name: "present inverted missing", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: true, Invert: true}, want: true},
		{name: "present inverted present", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderPresent, Present: true, Invert: true}, headers: []string{"h", "v"}, want: false},
		{name: "range in", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: -10, RangeEnd: 10}, headers: []string{"n", "-10"}, want: true},
		{name: "range end exclusive", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: -10, RangeEnd: 10}, headers: []string{"n", "10"}, want: false},
		{name: "range whitespace and sign", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 10}, headers: []string{"n", " +5 "}, want: true},
		{name: "range not a number", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 10}, headers: []string{"n", "5x"}, want: false},
		{name: "range overflow", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 10}, headers: []string{"n", "99999999999999999999"}, want: false},
		{name: "range inverted", matcher: model.HeaderMatcher{Name: "n", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 10, Invert: true}, headers: []string{"n", "50"}, want: true},
		{name: "missing fails even inverted", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringExact, "v", false), Invert: true}, want: false},
		{name: "missing as empty", matcher: model.HeaderMatcher{Name: "h", String: str(model.StringExact, "", false), TreatMissingAsEmpty: true}, want: true},
		{name: "missing as empty inverted range", matcher: model.HeaderMatcher{Name: "h", Kind: model.HeaderRange, RangeStart: 0, RangeEnd: 10, Invert: true, TreatMissingAsEmpty: true}, want: true},
		{name: "multiple values joined", matcher: model.HeaderMatcher{Name: "x", String: str(model.StringExact, "a,b", false)}, headers: []string{"x", "a", "y", "z", "x", "b"}, want: true},
		{name: "multiple values first only fails", matcher: model.HeaderMatcher{Name: "x", String: str(model.StringExact, "a", false)}, headers: []string{"x", "a", "x", "b"}, want: false},
		{name: "pseudo method", matcher: model.HeaderMatcher{Name: ":method", String: str(model.StringExact, "GET", false)}, want: true},
		{name: "pseudo authority", matcher: model.HeaderMatcher{Name: ":authority", String: str(model.StringSuffix, ".com", false)}, want: true},
		{name: "pseudo path includes query", matcher: model.HeaderMatcher{Name: ":path", String: str(model.StringSuffix, "?q=1", false)}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := prefix("/")
			m.Headers = []model.HeaderMatcher{tc.matcher}
			tbl := mustCompile(t, oneHost(directRoute("target", m)))
			_, e := tbl.Select(request("h.com", "/p?q=1", tc.headers...))
			if got := e != nil; got != tc.want {
				t.Fatalf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestQueryMatch(t *testing.T) {
	exact := func(v string) *model.StringMatcher { return &model.StringMatcher{Kind: model.StringExact, Value: v} }
	tests := []struct {
		name    string
		matcher model.QueryParameterMatcher
		path    string
		want    bool
	}{
		{name: "exact", matcher: model.QueryParameterMatcher{Name: "debug", String: exact("1")}, path: "/?a=b&debug=1", want: true},
		{name: "exact mismatch", matcher: model.QueryParameterMatcher{Name: "debug", String: exact("1")}, path: "/?debug=2", want: false},
		{name: "first value wins", matcher: model.QueryParameterMatcher{Name: "debug", String: exact("1")}, path: "/?debug=2&debug=1", want: false},
		{name: "not decoded", matcher: model.QueryParameterMatcher{Name: "q", String: exact("a b")}, path: "/?q=a%20b", want: false},
		{name: "name is case-sensitive", matcher: model.QueryParameterMatcher{Name: "Debug", Present: true}, path: "/?debug=1", want: false},
		{name: "present", matcher: model.QueryParameterMatcher{Name: "debug", Present: true}, path: "/?debug", want: true},
		{name: "present empty value", matcher: model.QueryParameterMatcher{Name: "debug", Present: true}, path: "/?x=1&debug=&y", want: true},
		{name: "present missing", matcher: model.QueryParameterMatcher{Name: "debug", Present: true}, path: "/?debugx=1", want: false},
		{name: "no query", matcher: model.QueryParameterMatcher{Name: "debug", Present: true}, path: "/", want: false},
		{name: "valueless equals empty", matcher: model.QueryParameterMatcher{Name: "debug", String: exact("")}, path: "/?debug", want: true},
		{name: "fragment ends query", matcher: model.QueryParameterMatcher{Name: "a", String: exact("1")}, path: "/?a=1#frag", want: true},
		{name: "regex", matcher: model.QueryParameterMatcher{Name: "v", String: &model.StringMatcher{Kind: model.StringRegex, Value: `[0-9]+`}}, path: "/?v=123", want: true},
		{name: "prefix ignore case", matcher: model.QueryParameterMatcher{Name: "v", String: &model.StringMatcher{Kind: model.StringPrefix, Value: "AB", IgnoreCase: true}}, path: "/?v=abc", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := prefix("/")
			m.QueryParameters = []model.QueryParameterMatcher{tc.matcher}
			tbl := mustCompile(t, oneHost(directRoute("target", m)))
			_, e := tbl.Select(request("h.com", tc.path))
			if got := e != nil; got != tc.want {
				t.Fatalf("matched = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFirstMatchWins(t *testing.T) {
	routes := []*model.Route{
		directRoute("exact", model.RouteMatch{PathKind: model.PathExact, Path: "/api/health"}),
		directRoute("api-header", model.RouteMatch{PathKind: model.PathPrefix, Path: "/api/",
			Headers: []model.HeaderMatcher{{Name: "x-canary", Kind: model.HeaderPresent, Present: true}}}),
		directRoute("regex", model.RouteMatch{PathKind: model.PathRegex, Path: "/api/v[0-9]+/.*"}),
		directRoute("api", prefix("/api")),
		directRoute("shadowed", prefix("/api/v1")),
		directRoute("root", prefix("/")),
	}
	tests := []struct {
		name    string
		path    string
		headers []string
		want    string
	}{
		{name: "exact first", path: "/api/health", want: "exact"},
		{name: "header before regex", path: "/api/v1/x", headers: []string{"x-canary", "1"}, want: "api-header"},
		{name: "regex before later prefix", path: "/api/v1/x", want: "regex"},
		{name: "prefix", path: "/api/other", want: "api"},
		{name: "shadowed never wins", path: "/api/v1", want: "api"},
		{name: "root catches rest", path: "/other", want: "root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{0, linearMax + 1} {
				tbl := mustCompile(t, oneHost(append(fillers(n), routes...)...))
				_, e := tbl.Select(request("h", tc.path, tc.headers...))
				if entryName(e) != tc.want {
					t.Fatalf("fillers=%d: route = %s, want %s", n, entryName(e), tc.want)
				}
			}
		})
	}
}

// TestIndexAgreesWithScan checks that the path index returns exactly what an in-order scan of
// every route returns, over random tables and requests.
func TestIndexAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "A", "api", "API", "v1", "v2", "b", "users", "x.y", ""}
	randPath := func() string {
		var b strings.Builder
		n := 1 + rng.IntN(4)
		for i := 0; i < n; i++ {
			b.WriteByte('/')
			b.WriteString(segs[rng.IntN(len(segs))])
		}
		if rng.IntN(4) == 0 {
			b.WriteString("?q=1")
		}
		return b.String()
	}
	for iter := 0; iter < 200; iter++ {
		var routes []*model.Route
		for i := 0; i < 10+rng.IntN(60); i++ {
			p := pathOnly(randPath())
			m := model.RouteMatch{Path: p, CaseInsensitive: rng.IntN(3) == 0}
			switch rng.IntN(6) {
			case 0, 1:
				m.PathKind = model.PathPrefix
				if rng.IntN(2) == 0 && len(p) > 1 {
					m.Path = p[:1+rng.IntN(len(p)-1)]
				}
			case 2:
				m.PathKind = model.PathExact
			case 3:
				m.PathKind = model.PathSeparatedPrefix
				m.Path = strings.TrimRight(p, "/")
				if m.Path == "" {
					m.Path = "/a"
				}
			case 4:
				m.PathKind = model.PathRegex
				m.Path = regexpQuote(p) + "(/.*)?"
			case 5:
				m.PathKind = model.PathTemplate
				m.Path = "/" + segs[2+rng.IntN(3)] + "/{rest=**}"
			}
			if rng.IntN(5) == 0 {
				m.Headers = []model.HeaderMatcher{{Name: "x-h", Kind: model.HeaderPresent, Present: true}}
			}
			routes = append(routes, directRoute(fmt.Sprint(i), m))
		}
		tbl := mustCompile(t, oneHost(routes...))
		vh := tbl.vhosts[0]
		if vh.index.root == nil {
			t.Fatal("expected an indexed virtual host")
		}
		for j := 0; j < 50; j++ {
			var kv []string
			if rng.IntN(2) == 0 {
				kv = []string{"x-h", "1"}
			}
			h := request("h", randPath(), kv...)
			p := pathOnly(h.Path)
			got := vh.index.first(vh.routes, p, h)
			want := scan(vh.routes, p, h)
			if got != want {
				t.Fatalf("path %q: index picked %d, scan picked %d", h.Path, got, want)
			}
		}
	}
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestConcurrentSelect lets the race detector confirm that matching shares no mutable state.
func TestConcurrentSelect(t *testing.T) {
	tbl := bigTable(t, 200)
	reqs := lastRequests(200)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				for kind, h := range reqs {
					// Each goroutine reads its own copy: header maps are per stream.
					c := h.Clone()
					if _, e := tbl.Select(c); e == nil {
						t.Errorf("%s: no match", kind)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestRegexLiteralPrefix(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{pattern: "/api/v[0-9]+", want: "/api/v"},
		{pattern: "^/api/.*", want: "/api/"},
		{pattern: "(/users)/[0-9]+", want: "/users/"},
		{pattern: "(?i)/admin", want: ""},
		{pattern: "/a|/b", want: "/"}, // the parser factors out the common "/"
		{pattern: "/a|/c|x", want: ""},
		{pattern: "/ab?", want: "/a"},
		{pattern: "[/]x", want: "/x"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			if got := regexLiteralPrefix(tc.pattern); got != tc.want {
				t.Fatalf("regexLiteralPrefix(%q) = %q, want %q", tc.pattern, got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		rc   *model.RouteConfig
		want string
	}{
		{name: "bad regex", rc: oneHost(directRoute("r1", model.RouteMatch{PathKind: model.PathRegex, Path: "(["})),
			want: `virtual_hosts[0] "vh": routes[0] "r1": match.safe_regex`},
		{name: "regex escaping its anchors", rc: oneHost(directRoute("r1", model.RouteMatch{PathKind: model.PathRegex, Path: "/a)|(/b"})),
			want: "unexpected )"},
		{name: "bad template", rc: oneHost(directRoute("r1", model.RouteMatch{PathKind: model.PathTemplate, Path: "/a/{x"})),
			want: `routes[0] "r1": match.path_match_policy`},
		{name: "template glob after text glob", rc: oneHost(directRoute("r1", model.RouteMatch{PathKind: model.PathTemplate, Path: "/**/*"})),
			want: "glob after text glob"},
		{name: "template repeated variable", rc: oneHost(directRoute("r1", model.RouteMatch{PathKind: model.PathTemplate, Path: "/{a}/{a}"})),
			want: "repeated variable"},
		{name: "bad header regex", rc: oneHost(directRoute("r1", model.RouteMatch{Path: "/", Headers: []model.HeaderMatcher{
			{Name: "x", String: model.StringMatcher{Kind: model.StringRegex, Value: "("}}}})),
			want: `match.headers[0] "x"`},
		{name: "bad range", rc: oneHost(directRoute("r1", model.RouteMatch{Path: "/", Headers: []model.HeaderMatcher{
			{Name: "x", Kind: model.HeaderRange, RangeStart: 5, RangeEnd: 5}}})),
			want: "range_match"},
		{name: "no action", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/")}),
			want: "exactly one of route, redirect and direct_response"},
		{name: "two cluster specifiers", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/"),
			Route: &model.RouteAction{Cluster: "a", ClusterHeader: "x"}}),
			want: "exactly one of cluster"},
		{name: "zero weights", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/"),
			Route: &model.RouteAction{WeightedClusters: []model.WeightedCluster{{Name: "a"}}}}),
			want: "total weight"},
		{name: "bad regex rewrite group", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/"),
			Route: &model.RouteAction{Cluster: "a", RegexRewrite: &model.RegexRewrite{Pattern: "/(a)", Substitution: `\2`}}}),
			want: "route.regex_rewrite: substitution"},
		{name: "unknown header operator", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/"),
			Route:   &model.RouteAction{Cluster: "a"},
			Headers: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{{Name: "x", Value: "%NOPE%"}}}}),
			want: `request_headers_to_add[0] "x": unsupported operator %NOPE%`},
		{name: "bad redirect code", rc: oneHost(&model.Route{Name: "r1", Match: prefix("/"),
			Redirect: &model.RedirectAction{Code: 200}}),
			want: "response_code 200"},
		{name: "duplicate domain", rc: &model.RouteConfig{Name: "rc", VirtualHosts: []*model.VirtualHost{
			{Name: "a", Domains: []string{"x.com"}}, {Name: "b", Domains: []string{"X.com"}}}},
			want: `virtual_hosts[1] "b": domains: domain "x.com" is already served`},
		{name: "two defaults", rc: &model.RouteConfig{Name: "rc", VirtualHosts: []*model.VirtualHost{
			{Name: "a", Domains: []string{"*"}}, {Name: "b", Domains: []string{"*"}}}},
			want: `virtual_hosts[1] "b"`},
		{name: "wildcard in the middle", rc: &model.RouteConfig{Name: "rc", VirtualHosts: []*model.VirtualHost{
			{Name: "a", Domains: []string{"a.*.com"}}}},
			want: "wildcard must be the first or last"},
		{name: "no domains", rc: &model.RouteConfig{Name: "rc", VirtualHosts: []*model.VirtualHost{{Name: "a"}}},
			want: "at least one domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.rc, nil)
			if err == nil {
				t.Fatalf("Compile succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestDirect(t *testing.T) {
	tbl := mustCompile(t, oneHost(&model.Route{Name: "d", Match: prefix("/"),
		DirectResponse: &model.DirectResponseAction{Status: 418, Body: []byte("teapot")}}))
	_, e := tbl.Select(request("h", "/"))
	if e.Kind != ActionDirect {
		t.Fatalf("kind = %v", e.Kind)
	}
	status, body := e.Direct()
	if status != 418 || string(body) != "teapot" {
		t.Fatalf("Direct() = %d %q", status, body)
	}
}

func TestVirtualHostAccessors(t *testing.T) {
	tbl := mustCompile(t, oneHost(directRoute("a", prefix("/a")), directRoute("b", prefix("/"))))
	if tbl.Name() != "rc" {
		t.Fatalf("Name() = %q", tbl.Name())
	}
	vh := tbl.FindVirtualHost("anything")
	names := []string{}
	for _, e := range vh.Routes() {
		names = append(names, e.Name)
		if e.VirtualHost() != vh {
			t.Fatalf("route %s has the wrong virtual host", e.Name)
		}
	}
	if !slices.Equal(names, []string{"a", "b"}) {
		t.Fatalf("routes = %v", names)
	}
	if e := vh.Match(&header.Map{Path: "/a/x"}); entryName(e) != "a" {
		t.Fatalf("Match = %s", entryName(e))
	}
	var nilTable *Table
	if vh, e := nilTable.Select(request("h", "/")); vh != nil || e != nil {
		t.Fatal("nil table matched")
	}
}
