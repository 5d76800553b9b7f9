package matcher

import (
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name  string
		m     *matcherv3.StringMatcher
		value string
		want  bool
	}{
		{name: "exact", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Abc"}}, value: "Abc", want: true},
		{name: "exact is case-sensitive", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Abc"}}, value: "abc"},
		{name: "exact folded", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Abc"}, IgnoreCase: true}, value: "aBC", want: true},
		{name: "empty exact matches empty", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{}}, value: "", want: true},
		{name: "prefix folded", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "/API"}, IgnoreCase: true}, value: "/api/x", want: true},
		{name: "suffix", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".example"}}, value: "a.example", want: true},
		{name: "suffix longer than value", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: ".example"}, IgnoreCase: true}, value: "ample"},
		{name: "contains folded", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "MID"}, IgnoreCase: true}, value: "a-mid-b", want: true},
		{name: "folding is ASCII only", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Ü"}, IgnoreCase: true}, value: "ü"},
		{name: "regex matches whole values", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "a+"}}}, value: "baa"},
		{name: "regex alternation anchored", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "a|b"}}}, value: "ab"},
		{name: "regex", m: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "a+"}}}, value: "aaa", want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewString(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(tc.value); got != tc.want {
				t.Errorf("Match(%q) = %v, want %v", tc.value, got, tc.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	h := &header.Map{Method: "GET", Path: "/a?b"}
	h.Add("x-a", "1")
	h.Add("x-a", "2")
	h.Add("x-n", "42")
	exact := func(v string) *routev3.HeaderMatcher_StringMatch {
		return &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}
	}
	for _, tc := range []struct {
		name string
		m    *routev3.HeaderMatcher
		want bool
	}{
		{name: "method pseudo-header", m: &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: exact("GET")}, want: true},
		{name: "values joined", m: &routev3.HeaderMatcher{Name: "X-A", HeaderMatchSpecifier: exact("1,2")}, want: true},
		{name: "range", m: &routev3.HeaderMatcher{Name: "x-n", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 40, End: 43}}}, want: true},
		{name: "missing header fails inverted match", m: &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: exact("1"), InvertMatch: true}},
		{name: "missing header as empty", m: &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: exact(""), TreatMissingHeaderAsEmpty: true}, want: true},
		{name: "absent, inverted presence", m: &routev3.HeaderMatcher{Name: "x-missing", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}, InvertMatch: true}, want: true},
		{name: "no specifier is presence", m: &routev3.HeaderMatcher{Name: "x-n"}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewHeader(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(h); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPath(t *testing.T) {
	p, err := NewPath(&matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "/a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]bool{"/a": true, "/a?x=1": true, "/a#f": true, "/ab": false, "/b?/a": false} {
		if got := p.Match(target); got != want {
			t.Errorf("Match(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr string
	}{
		{name: "no pattern", err: second(NewString(&matcherv3.StringMatcher{})), wantErr: "one of exact, prefix, suffix, contains, safe_regex required"},
		{name: "empty prefix", err: second(NewString(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{}})), wantErr: "empty pattern"},
		{name: "bad regex", err: second(NewString(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}})), wantErr: "safe_regex.regex: "},
		{name: "bad header name", err: second(NewHeader(&routev3.HeaderMatcher{Name: "a:b"})), wantErr: `name: "a:b" is not a header name`},
		{name: "bad range", err: second(NewHeader(&routev3.HeaderMatcher{Name: "a", HeaderMatchSpecifier: &routev3.HeaderMatcher_RangeMatch{RangeMatch: &typev3.Int64Range{Start: 3, End: 3}}})), wantErr: "range_match: start 3 must be below end 3"},
		{name: "path required", err: second(NewPath(&matcherv3.PathMatcher{})), wantErr: "path: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", tc.err, tc.wantErr)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }
