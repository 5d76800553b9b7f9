package route

import (
	"testing"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/model"
)

func TestRewriteRequest(t *testing.T) {
	sep := func(p string) model.RouteMatch { return model.RouteMatch{PathKind: model.PathSeparatedPrefix, Path: p} }
	tests := []struct {
		name     string
		match    model.RouteMatch
		action   model.RouteAction
		path     string
		wantPath string
		wantHost string
	}{
		{name: "root prefix", match: prefix("/"), action: model.RouteAction{PrefixRewrite: "/v2/"},
			path: "/abc?x=1", wantPath: "/v2/abc?x=1"},
		{name: "prefix to root keeps the slash that follows", match: prefix("/foo"), action: model.RouteAction{PrefixRewrite: "/"},
			path: "/foo/bar", wantPath: "//bar"},
		{name: "prefix with trailing slash to root", match: prefix("/foo/"), action: model.RouteAction{PrefixRewrite: "/"},
			path: "/foo/bar?q", wantPath: "/bar?q"},
		{name: "prefix whole path", match: prefix("/foo"), action: model.RouteAction{PrefixRewrite: "/"},
			path: "/foo", wantPath: "/"},
		{name: "prefix only replaces the matched portion", match: prefix("/foo"), action: model.RouteAction{PrefixRewrite: "/bar"},
			path: "/foo/foo", wantPath: "/bar/foo"},
		{name: "prefix keeps query when path equals prefix", match: prefix("/foo"), action: model.RouteAction{PrefixRewrite: "/bar"},
			path: "/foo?a=/foo", wantPath: "/bar?a=/foo"},
		{name: "case-insensitive prefix", match: model.RouteMatch{PathKind: model.PathPrefix, Path: "/API", CaseInsensitive: true},
			action: model.RouteAction{PrefixRewrite: "/v1"}, path: "/api/x", wantPath: "/v1/x"},
		{name: "separated prefix", match: sep("/api"), action: model.RouteAction{PrefixRewrite: "/v1"},
			path: "/api/x?q", wantPath: "/v1/x?q"},
		{name: "separated prefix exact", match: sep("/api"), action: model.RouteAction{PrefixRewrite: "/v1"},
			path: "/api", wantPath: "/v1"},
		{name: "separated prefix query", match: sep("/api"), action: model.RouteAction{PrefixRewrite: "/v1/"},
			path: "/api?q=1", wantPath: "/v1/?q=1"},
		{name: "exact path", match: model.RouteMatch{PathKind: model.PathExact, Path: "/a"}, action: model.RouteAction{PrefixRewrite: "/b"},
			path: "/a?x", wantPath: "/b?x"},
		{name: "regex route prefix rewrite replaces path", match: model.RouteMatch{PathKind: model.PathRegex, Path: "/x/.*"},
			action: model.RouteAction{PrefixRewrite: "/y"}, path: "/x/1/2?q", wantPath: "/y?q"},
		{name: "regex rewrite groups", match: prefix("/service"),
			action: model.RouteAction{RegexRewrite: &model.RegexRewrite{Pattern: `^/service/([^/]+)(/.*)$`, Substitution: `\2/instance/\1`}},
			path:   "/service/foo/v1/api?x=1", wantPath: "/v1/api/instance/foo?x=1"},
		{name: "regex rewrite replaces every match", match: prefix("/"),
			action: model.RouteAction{RegexRewrite: &model.RegexRewrite{Pattern: "o", Substitution: "0"}},
			path:   "/foo/boo?o=o", wantPath: "/f00/b00?o=o"},
		{name: "regex rewrite no match", match: prefix("/"),
			action: model.RouteAction{RegexRewrite: &model.RegexRewrite{Pattern: "^/zzz", Substitution: "/y"}},
			path:   "/a", wantPath: "/a"},
		{name: "regex rewrite dollar and backslash literal", match: prefix("/"),
			action: model.RouteAction{RegexRewrite: &model.RegexRewrite{Pattern: "^/(a)$", Substitution: `/$x\\\1`}},
			path:   "/a", wantPath: `/$x\a`},
		{name: "regex rewrite whole match", match: prefix("/"),
			action: model.RouteAction{RegexRewrite: &model.RegexRewrite{Pattern: "^/v1/", Substitution: `\0old/`}},
			path:   "/v1/x", wantPath: "/v1/old/x"},
		{name: "host rewrite", match: prefix("/"), action: model.RouteAction{HostRewriteLiteral: "upstream.internal"},
			path: "/a?b", wantPath: "/a?b", wantHost: "upstream.internal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			action := tc.action
			action.Cluster = "c"
			tbl := mustCompile(t, oneHost(&model.Route{Name: "r", Match: tc.match, Route: &action}))
			h := request("orig.example", tc.path)
			_, e := tbl.Select(h)
			if e == nil {
				t.Fatal("no route matched")
			}
			buf := make([]byte, 0, 64)
			e.RewriteRequest(h, buf)
			if h.Path != tc.wantPath {
				t.Fatalf("path = %q, want %q", h.Path, tc.wantPath)
			}
			wantHost := tc.wantHost
			if wantHost == "" {
				wantHost = "orig.example"
			}
			if h.Authority != wantHost {
				t.Fatalf("authority = %q, want %q", h.Authority, wantHost)
			}
		})
	}
}

func TestRewriteRequestTwiceSameBuffer(t *testing.T) {
	tbl := mustCompile(t, oneHost(&model.Route{Name: "r", Match: prefix("/a"),
		Route: &model.RouteAction{Cluster: "c", PrefixRewrite: "/a/b"}}))
	h := request("h", "/a/x")
	_, e := tbl.Select(h)
	buf := make([]byte, 0, 64)
	buf = e.RewriteRequest(h, buf)
	buf = e.RewriteRequest(h, buf)
	if h.Path != "/a/b/b/x" {
		t.Fatalf("path = %q", h.Path)
	}
	_ = buf
}

func TestRedirectAfterRewriteSameBuffer(t *testing.T) {
	tbl := mustCompile(t, oneHost(
		&model.Route{Name: "redir", Match: prefix("/v2/old"), Redirect: &model.RedirectAction{PrefixRewrite: "/v2/new"}},
		&model.Route{Name: "fwd", Match: prefix("/"), Route: &model.RouteAction{Cluster: "c", PrefixRewrite: "/v2/"}},
	))
	h := request("h", "/old/x")
	_, e := tbl.Select(h)
	buf := e.RewriteRequest(h, make([]byte, 0, 64))
	// The rewritten path now routes to the redirect; its Location reuses the same buffer.
	_, e = tbl.Select(h)
	if e.Name != "redir" {
		t.Fatalf("route = %s", e.Name)
	}
	if _, loc := e.Redirect(h, false, buf); loc != "http://h/v2/new/x" {
		t.Fatalf("location = %q", loc)
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		name      string
		match     model.RouteMatch
		redirect  model.RedirectAction
		scheme    string // request :scheme; "" leaves it unset
		secure    bool
		xfp       string
		authority string
		path      string
		wantCode  int
		wantLoc   string
	}{
		{name: "https redirect drops :80", redirect: model.RedirectAction{Scheme: "https"},
			scheme: "http", authority: "foo.com:80", path: "/a?b=1", wantCode: 301, wantLoc: "https://foo.com/a?b=1"},
		{name: "https redirect keeps other port", redirect: model.RedirectAction{Scheme: "https"},
			scheme: "http", authority: "foo.com:8080", path: "/a", wantCode: 301, wantLoc: "https://foo.com:8080/a"},
		{name: "http redirect drops :443", redirect: model.RedirectAction{Scheme: "http"},
			scheme: "https", authority: "foo.com:443", path: "/", wantCode: 301, wantLoc: "http://foo.com/"},
		{name: "same scheme keeps explicit port", redirect: model.RedirectAction{Scheme: "https"},
			scheme: "https", authority: "foo.com:443", path: "/", wantCode: 301, wantLoc: "https://foo.com:443/"},
		{name: "x-forwarded-proto decides port stripping", redirect: model.RedirectAction{Scheme: "https"},
			scheme: "https", xfp: "http", authority: "foo.com:80", path: "/", wantCode: 301, wantLoc: "https://foo.com/"},
		{name: "port redirect replaces port", redirect: model.RedirectAction{Scheme: "https", Port: 8443},
			scheme: "http", authority: "foo.com:8080", path: "/a", wantCode: 301, wantLoc: "https://foo.com:8443/a"},
		{name: "port redirect adds port", redirect: model.RedirectAction{Port: 8080},
			scheme: "http", authority: "foo.com", path: "/a", wantCode: 301, wantLoc: "http://foo.com:8080/a"},
		{name: "default port redirect omitted", redirect: model.RedirectAction{Scheme: "https", Port: 443},
			scheme: "http", authority: "foo.com:8080", path: "/a", wantCode: 301, wantLoc: "https://foo.com/a"},
		{name: "ipv6 port", redirect: model.RedirectAction{Scheme: "https"},
			scheme: "http", authority: "[::1]:80", path: "/", wantCode: 301, wantLoc: "https://[::1]/"},
		{name: "host redirect", redirect: model.RedirectAction{Host: "bar.com"},
			scheme: "http", authority: "foo.com:8080", path: "/a?b", wantCode: 301, wantLoc: "http://bar.com/a?b"},
		{name: "host and port redirect", redirect: model.RedirectAction{Host: "bar.com", Port: 9000},
			scheme: "http", authority: "foo.com", path: "/a", wantCode: 301, wantLoc: "http://bar.com:9000/a"},
		{name: "path redirect keeps query", redirect: model.RedirectAction{Path: "/new"},
			scheme: "http", authority: "foo.com", path: "/old?x=1", wantCode: 301, wantLoc: "http://foo.com/new?x=1"},
		{name: "path redirect query wins", redirect: model.RedirectAction{Path: "/new?y=2", StripQuery: true},
			scheme: "http", authority: "foo.com", path: "/old?x=1", wantCode: 301, wantLoc: "http://foo.com/new?y=2"},
		{name: "path redirect strip query", redirect: model.RedirectAction{Path: "/new", StripQuery: true},
			scheme: "http", authority: "foo.com", path: "/old?x=1", wantCode: 301, wantLoc: "http://foo.com/new"},
		{name: "strip query", redirect: model.RedirectAction{StripQuery: true, Code: 302},
			scheme: "http", authority: "foo.com", path: "/a?x=1", wantCode: 302, wantLoc: "http://foo.com/a"},
		{name: "prefix rewrite", match: prefix("/old"), redirect: model.RedirectAction{PrefixRewrite: "/new", Code: 307},
			scheme: "https", authority: "foo.com", path: "/old/x?y", wantCode: 307, wantLoc: "https://foo.com/new/x?y"},
		{name: "prefix rewrite strip query", match: prefix("/old"), redirect: model.RedirectAction{PrefixRewrite: "/new", StripQuery: true},
			scheme: "https", authority: "foo.com", path: "/old/x?y", wantCode: 301, wantLoc: "https://foo.com/new/x"},
		{name: "regex rewrite", redirect: model.RedirectAction{Code: 308,
			RegexRewrite: &model.RegexRewrite{Pattern: `^/u/([0-9]+)$`, Substitution: `/users/\1`}},
			scheme: "http", authority: "foo.com", path: "/u/42?a", wantCode: 308, wantLoc: "http://foo.com/users/42?a"},
		{name: "path without leading slash", redirect: model.RedirectAction{Path: "rel"},
			scheme: "http", authority: "foo.com", path: "/x", wantCode: 301, wantLoc: "http://foo.com/rel"},
		{name: "scheme from secure connection", redirect: model.RedirectAction{Path: "/n"},
			secure: true, authority: "foo.com", path: "/x", wantCode: 301, wantLoc: "https://foo.com/n"},
		{name: "scheme from plaintext connection", redirect: model.RedirectAction{Path: "/n"},
			authority: "foo.com", path: "/x", wantCode: 301, wantLoc: "http://foo.com/n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.match
			if m.Path == "" {
				m = prefix("/")
			}
			rd := tc.redirect
			tbl := mustCompile(t, oneHost(&model.Route{Name: "r", Match: m, Redirect: &rd}))
			h := request(tc.authority, tc.path)
			h.Scheme = tc.scheme
			if tc.xfp != "" {
				h.Add("x-forwarded-proto", tc.xfp)
			}
			_, e := tbl.Select(h)
			if e == nil || e.Kind != ActionRedirect {
				t.Fatalf("route = %v", e)
			}
			code, loc := e.Redirect(h, tc.secure, make([]byte, 0, 128))
			if code != tc.wantCode || loc != tc.wantLoc {
				t.Fatalf("Redirect = %d %q, want %d %q", code, loc, tc.wantCode, tc.wantLoc)
			}
			if h.Path != tc.path {
				t.Fatalf("Redirect changed the request path to %q", h.Path)
			}
		})
	}
}

func TestPickCluster(t *testing.T) {
	known := map[string]*cluster.Ref{}
	resolve := func(name string) *cluster.Ref {
		if r, ok := known[name]; ok {
			return r
		}
		if name == "unknown" || name == "late" {
			return nil
		}
		r := cluster.NewRef(name)
		known[name] = r
		return r
	}
	lateRef := cluster.NewRef("late")
	rc := oneHost(
		&model.Route{Name: "single", Match: prefix("/single"), Route: &model.RouteAction{Cluster: "a"}},
		&model.Route{Name: "weighted", Match: prefix("/weighted"), Route: &model.RouteAction{WeightedClusters: []model.WeightedCluster{
			{Name: "w1", Weight: 1},
			{Name: "w0", Weight: 0},
			{Name: "w2", Weight: 3, Headers: model.HeaderMutation{RequestAdd: []model.HeaderValueOption{{Name: "x-w", Value: "2"}}}},
		}}},
		&model.Route{Name: "header", Match: prefix("/header"), Route: &model.RouteAction{ClusterHeader: "X-Cluster", ClusterNotFoundCode: 404}},
		&model.Route{Name: "missing", Match: prefix("/missing"), Route: &model.RouteAction{Cluster: "unknown"}},
	)
	tbl, err := Compile(rc, resolve)
	if err != nil {
		t.Fatal(err)
	}
	// A name resolve learns after Compile is still found for cluster_header routes.
	resolveLate := func(h string) { known[h] = lateRef }
	resolveLate("late")

	tests := []struct {
		name        string
		path        string
		headers     []string
		rnd         uint64
		wantName    string
		wantRef     bool
		wantHeaders bool
	}{
		{name: "single", path: "/single", wantName: "a", wantRef: true},
		{name: "weighted first", path: "/weighted", rnd: 0, wantName: "w1", wantRef: true},
		{name: "weighted skips zero weight", path: "/weighted", rnd: 1, wantName: "w2", wantRef: true, wantHeaders: true},
		{name: "weighted last", path: "/weighted", rnd: 3, wantName: "w2", wantRef: true, wantHeaders: true},
		{name: "weighted wraps", path: "/weighted", rnd: 4, wantName: "w1", wantRef: true},
		{name: "header known at compile time", path: "/header", headers: []string{"x-cluster", "w1"}, wantName: "w1", wantRef: true},
		{name: "header resolved later", path: "/header", headers: []string{"x-cluster", "late"}, wantName: "late", wantRef: true},
		{name: "header unknown", path: "/header", headers: []string{"x-cluster", "unknown"}, wantName: "unknown"},
		{name: "header missing", path: "/header"},
		{name: "cluster unresolved", path: "/missing", wantName: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := request("h", tc.path, tc.headers...)
			_, e := tbl.Select(h)
			if e == nil || e.Forward == nil {
				t.Fatal("no forward route")
			}
			ref, name, hm := e.Forward.PickCluster(h, tc.rnd)
			if name != tc.wantName || (ref != nil) != tc.wantRef || (hm != nil) != tc.wantHeaders {
				t.Fatalf("PickCluster = %v %q %v; want ref=%v %q headers=%v", ref, name, hm, tc.wantRef, tc.wantName, tc.wantHeaders)
			}
			if ref != nil && ref.Name() != name {
				t.Fatalf("ref for %q is named %q", name, ref.Name())
			}
		})
	}

	_, e := tbl.Select(request("h", "/header"))
	if e.Forward.ClusterNotFoundCode != 404 || e.Forward.ClusterHeader != "x-cluster" {
		t.Fatalf("forward = %+v", e.Forward)
	}
	_, e = tbl.Select(request("h", "/single"))
	if e.Forward.ClusterNotFoundCode != 503 || e.Forward.ClusterName() != "a" {
		t.Fatalf("forward = %+v", e.Forward)
	}
}

func TestCompileSharesRefs(t *testing.T) {
	calls := map[string]int{}
	resolve := func(name string) *cluster.Ref { calls[name]++; return cluster.NewRef(name) }
	rc := oneHost(
		&model.Route{Name: "a", Match: prefix("/a"), Route: &model.RouteAction{Cluster: "c"}},
		&model.Route{Name: "b", Match: prefix("/b"), Route: &model.RouteAction{Cluster: "c"}},
	)
	tbl, err := Compile(rc, resolve)
	if err != nil {
		t.Fatal(err)
	}
	if calls["c"] != 1 {
		t.Fatalf("resolve called %d times for c", calls["c"])
	}
	_, a := tbl.Select(request("h", "/a"))
	_, b := tbl.Select(request("h", "/b"))
	ra, _, _ := a.Forward.PickCluster(nil, 0)
	rb, _, _ := b.Forward.PickCluster(nil, 0)
	if ra != rb {
		t.Fatal("routes to the same cluster got different refs")
	}
}
