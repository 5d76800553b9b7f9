package extauthz

import (
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// listMatcher is a compiled ListStringMatcher over header names: a name matches when any
// pattern does.
type listMatcher struct {
	patterns []stringMatcher
}

type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchSuffix
	matchContains
	matchRegex
)

type stringMatcher struct {
	kind       matchKind
	value      string // lower-cased when ignoreCase
	ignoreCase bool
	re         *regexp.Regexp
}

// compileList compiles l (nil when unset).
func compileList(path string, l *matcherv3.ListStringMatcher) (*listMatcher, error) {
	if l == nil {
		return nil, nil
	}
	if len(l.GetPatterns()) == 0 {
		return nil, fmt.Errorf("ext_authz: %s.patterns: at least one is required", path)
	}
	out := &listMatcher{}
	for i, p := range l.GetPatterns() {
		sm := stringMatcher{ignoreCase: p.GetIgnoreCase()}
		switch m := p.GetMatchPattern().(type) {
		case *matcherv3.StringMatcher_Exact:
			sm.kind, sm.value = matchExact, m.Exact
		case *matcherv3.StringMatcher_Prefix:
			sm.kind, sm.value = matchPrefix, m.Prefix
		case *matcherv3.StringMatcher_Suffix:
			sm.kind, sm.value = matchSuffix, m.Suffix
		case *matcherv3.StringMatcher_Contains:
			sm.kind, sm.value = matchContains, m.Contains
		case *matcherv3.StringMatcher_SafeRegex:
			expr := m.SafeRegex.GetRegex()
			if sm.ignoreCase {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile("^(?:" + expr + ")$")
			if err != nil {
				return nil, fmt.Errorf("ext_authz: %s.patterns[%d].safe_regex.regex: %v", path, i, err)
			}
			sm.kind, sm.re = matchRegex, re
		default:
			return nil, fmt.Errorf("ext_authz: %s.patterns[%d]: a match pattern is required", path, i)
		}
		if sm.kind != matchRegex && sm.value == "" && sm.kind != matchExact {
			return nil, fmt.Errorf("ext_authz: %s.patterns[%d]: empty pattern", path, i)
		}
		if sm.ignoreCase {
			sm.value = strings.ToLower(sm.value)
		}
		out.patterns = append(out.patterns, sm)
	}
	return out, nil
}

// match reports whether the lower-case header name matches. Names are lower-case on both
// sides unless a pattern is case-sensitive with capitals, which then never matches a
// header name, as in Envoy (names are lower-cased before matching).
func (l *listMatcher) match(name string) bool {
	for i := range l.patterns {
		p := &l.patterns[i]
		var ok bool
		switch p.kind {
		case matchExact:
			ok = name == p.value
		case matchPrefix:
			ok = strings.HasPrefix(name, p.value)
		case matchSuffix:
			ok = strings.HasSuffix(name, p.value)
		case matchContains:
			ok = strings.Contains(name, p.value)
		case matchRegex:
			ok = p.re.MatchString(name)
		}
		if ok {
			return true
		}
	}
	return false
}
