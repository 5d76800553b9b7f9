package jwtauthn

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
)

type reqKind uint8

const (
	reqProvider reqKind = iota + 1
	reqAny
	reqAll
	reqAllowMissing
	reqAllowMissingOrFailed
)

// requirement is a compiled JwtRequirement.
type requirement struct {
	kind      reqKind
	prov      *provider
	audiences []string // provider_and_audiences; nil: the provider's own
	children  []*requirement
}

func (c *Config) requirement(path string, r *jwtv3.JwtRequirement) (*requirement, error) {
	switch t := r.GetRequiresType().(type) {
	case *jwtv3.JwtRequirement_ProviderName:
		p := c.byName[t.ProviderName]
		if p == nil {
			return nil, fmt.Errorf("jwt_authn: %s.provider_name: no provider %q", path, t.ProviderName)
		}
		return &requirement{kind: reqProvider, prov: p}, nil
	case *jwtv3.JwtRequirement_ProviderAndAudiences:
		pa := t.ProviderAndAudiences
		p := c.byName[pa.GetProviderName()]
		if p == nil {
			return nil, fmt.Errorf("jwt_authn: %s.provider_and_audiences.provider_name: no provider %q", path, pa.GetProviderName())
		}
		aud := pa.GetAudiences()
		if aud == nil {
			aud = []string{}
		}
		return &requirement{kind: reqProvider, prov: p, audiences: aud}, nil
	case *jwtv3.JwtRequirement_RequiresAny:
		return c.requirementList(path+".requires_any", reqAny, t.RequiresAny.GetRequirements())
	case *jwtv3.JwtRequirement_RequiresAll:
		return c.requirementList(path+".requires_all", reqAll, t.RequiresAll.GetRequirements())
	case *jwtv3.JwtRequirement_AllowMissing:
		return &requirement{kind: reqAllowMissing}, nil
	case *jwtv3.JwtRequirement_AllowMissingOrFailed:
		return &requirement{kind: reqAllowMissingOrFailed}, nil
	}
	return nil, fmt.Errorf("jwt_authn: %s: a requirement is required", path)
}

func (c *Config) requirementList(path string, kind reqKind, rs []*jwtv3.JwtRequirement) (*requirement, error) {
	if len(rs) < 2 {
		return nil, fmt.Errorf("jwt_authn: %s.requirements: at least 2 required", path)
	}
	out := &requirement{kind: kind}
	for i, r := range rs {
		ch, err := c.requirement(fmt.Sprintf("%s.requirements[%d]", path, i), r)
		if err != nil {
			return nil, err
		}
		out.children = append(out.children, ch)
	}
	return out, nil
}

// rule is a compiled RequirementRule: the first rule whose match fits the request decides
// its requirement; req is nil for a rule that requires nothing.
type rule struct {
	match matcher
	req   *requirement
}

func (c *Config) rule(path string, r *jwtv3.RequirementRule) (rule, error) {
	var ru rule
	var err error
	if ru.match, err = compileMatch(r.GetMatch()); err != nil {
		return ru, fmt.Errorf("jwt_authn: %s.match.%v", path, err)
	}
	switch t := r.GetRequirementType().(type) {
	case *jwtv3.RequirementRule_Requires:
		ru.req, err = c.requirement(path+".requires", t.Requires)
	case *jwtv3.RequirementRule_RequirementName:
		if ru.req = c.reqMap[t.RequirementName]; ru.req == nil {
			err = fmt.Errorf("jwt_authn: %s.requirement_name: %q not in requirement_map", path, t.RequirementName)
		}
	}
	return ru, err
}

// matcher is a compiled route match: a path condition and header conditions.
type matcher struct {
	kind          uint8 // matchPrefix, matchPath, matchRegex
	value         string
	caseSensitive bool
	re            *regexp.Regexp
	headers       []headerMatch
}

const (
	matchPrefix uint8 = iota + 1
	matchPath
	matchRegex
)

type headerMatch struct {
	name    string
	str     *strMatch // nil: present_match
	present bool
	invert  bool
}

type strMatch struct {
	kind       uint8 // 'e'xact, 'p'refix, 's'uffix, 'c'ontains, 'r'egex
	value      string
	ignoreCase bool
	re         *regexp.Regexp
}

func compileMatch(m *routev3.RouteMatch) (matcher, error) {
	var mt matcher
	if m == nil {
		return mt, errors.New("required")
	}
	mt.caseSensitive = m.GetCaseSensitive() == nil || m.GetCaseSensitive().GetValue()
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		mt.kind, mt.value = matchPrefix, ps.Prefix
	case *routev3.RouteMatch_Path:
		mt.kind, mt.value = matchPath, ps.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := fullRegexp(ps.SafeRegex.GetRegex(), !mt.caseSensitive)
		if err != nil {
			return mt, fmt.Errorf("safe_regex.regex: %v", err)
		}
		mt.kind, mt.re = matchRegex, re
	default:
		return mt, errors.New("one of prefix, path, safe_regex required")
	}
	if !mt.caseSensitive {
		mt.value = strings.ToLower(mt.value)
	}
	for i, h := range m.GetHeaders() {
		hm := headerMatch{name: header.Lower(h.GetName()), invert: h.GetInvertMatch()}
		if hm.name == "" {
			return mt, fmt.Errorf("headers[%d].name: empty", i)
		}
		var err error
		switch s := h.GetHeaderMatchSpecifier().(type) {
		case *routev3.HeaderMatcher_ExactMatch:
			hm.str = &strMatch{kind: 'e', value: s.ExactMatch}
		case *routev3.HeaderMatcher_PrefixMatch:
			hm.str = &strMatch{kind: 'p', value: s.PrefixMatch}
		case *routev3.HeaderMatcher_SuffixMatch:
			hm.str = &strMatch{kind: 's', value: s.SuffixMatch}
		case *routev3.HeaderMatcher_ContainsMatch:
			hm.str = &strMatch{kind: 'c', value: s.ContainsMatch}
		case *routev3.HeaderMatcher_SafeRegexMatch:
			hm.str = &strMatch{kind: 'r'}
			hm.str.re, err = fullRegexp(s.SafeRegexMatch.GetRegex(), false)
		case *routev3.HeaderMatcher_PresentMatch:
			hm.present = s.PresentMatch
		case *routev3.HeaderMatcher_StringMatch:
			hm.str, err = compileString(s.StringMatch)
		default:
			hm.present = true
		}
		if err != nil {
			return mt, fmt.Errorf("headers[%d]: %v", i, err)
		}
		mt.headers = append(mt.headers, hm)
	}
	return mt, nil
}

func compileString(s *matcherv3.StringMatcher) (*strMatch, error) {
	sm := &strMatch{ignoreCase: s.GetIgnoreCase()}
	switch p := s.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		sm.kind, sm.value = 'e', p.Exact
	case *matcherv3.StringMatcher_Prefix:
		sm.kind, sm.value = 'p', p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		sm.kind, sm.value = 's', p.Suffix
	case *matcherv3.StringMatcher_Contains:
		sm.kind, sm.value = 'c', p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := fullRegexp(p.SafeRegex.GetRegex(), false)
		if err != nil {
			return nil, fmt.Errorf("string_match.safe_regex: %v", err)
		}
		sm.kind, sm.re = 'r', re
	default:
		return nil, errors.New("string_match: a pattern is required")
	}
	if sm.ignoreCase {
		sm.value = strings.ToLower(sm.value)
	}
	return sm, nil
}

// fullRegexp compiles an RE2 pattern that must match the whole input, as Envoy's safe_regex.
func fullRegexp(pattern string, fold bool) (*regexp.Regexp, error) {
	if fold {
		pattern = "(?i)" + pattern
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

func (m *matcher) matches(h *header.Map) bool {
	path := h.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch m.kind {
	case matchPrefix:
		if m.caseSensitive {
			if !strings.HasPrefix(path, m.value) {
				return false
			}
		} else if len(path) < len(m.value) || !strings.EqualFold(path[:len(m.value)], m.value) {
			return false
		}
	case matchPath:
		if m.caseSensitive && path != m.value || !m.caseSensitive && !strings.EqualFold(path, m.value) {
			return false
		}
	case matchRegex:
		if !m.re.MatchString(path) {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(h) {
			return false
		}
	}
	return true
}

func (hm *headerMatch) matches(h *header.Map) bool {
	v, ok := h.Get(hm.name)
	var r bool
	switch {
	case hm.str == nil:
		r = ok == hm.present
	case !ok:
		return false // an absent header fails a value match, inverted or not, as in Envoy
	default:
		r = hm.str.match(v)
	}
	return r != hm.invert
}

func (s *strMatch) match(v string) bool {
	if s.ignoreCase {
		v = strings.ToLower(v)
	}
	switch s.kind {
	case 'e':
		return v == s.value
	case 'p':
		return strings.HasPrefix(v, s.value)
	case 's':
		return strings.HasSuffix(v, s.value)
	case 'c':
		return strings.Contains(v, s.value)
	case 'r':
		return s.re.MatchString(v)
	}
	return false
}
