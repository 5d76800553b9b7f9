package cors

import (
	"strings"
	"testing"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter/matcher"
)

// FuzzOriginMatch checks the origin matcher against a plain model of each pattern kind: no
// panic, and folding, prefixes and suffixes agree with strings' own functions.
func FuzzOriginMatch(f *testing.F) {
	f.Add("https://a.example", ".EXAMPLE", uint8(2), true)
	f.Add("null", "null", uint8(0), false)
	f.Add("https://ü.example", "Ü", uint8(3), true)
	f.Add("", "", uint8(0), true)
	f.Add("https://1.c.example", `https://[0-9]+\.c\.example`, uint8(4), false)
	f.Fuzz(func(t *testing.T, origin, pattern string, kind uint8, fold bool) {
		sm := &matcherv3.StringMatcher{IgnoreCase: fold}
		switch kind % 5 {
		case 0:
			sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: pattern}
		case 1:
			sm.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: pattern}
		case 2:
			sm.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: pattern}
		case 3:
			sm.MatchPattern = &matcherv3.StringMatcher_Contains{Contains: pattern}
		case 4:
			sm.IgnoreCase = false
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: pattern}}
		}
		m, err := matcher.NewString(sm)
		if err != nil {
			return
		}
		p := &Policy{origins: []matcher.String{m}}
		got := p.originAllowed(origin)
		if kind%5 == 4 {
			return
		}
		o, pat := origin, pattern
		if fold {
			o, pat = lowerASCII(o), lowerASCII(pat)
		}
		var want bool
		switch kind % 5 {
		case 0:
			want = o == pat
		case 1:
			want = strings.HasPrefix(o, pat)
		case 2:
			want = strings.HasSuffix(o, pat)
		case 3:
			want = strings.Contains(o, pat)
		}
		// A pattern that matches "*" allows every origin.
		star := "*"
		switch kind % 5 {
		case 0:
			want = want || star == pat
		case 1:
			want = want || strings.HasPrefix(star, pat)
		case 2:
			want = want || strings.HasSuffix(star, pat)
		case 3:
			want = want || strings.Contains(star, pat)
		}
		if got != want {
			t.Fatalf("origin %q pattern %q kind %d fold %v: got %v, want %v", origin, pattern, kind%5, fold, got, want)
		}
	})
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
