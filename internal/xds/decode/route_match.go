package decode

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	uritemplatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&routev3.RouteMatch{}, "prefix", "path", "safe_regex", "path_separated_prefix",
		"path_match_policy", "case_sensitive", "headers", "query_parameters")
	_ = allow(&corev3.TypedExtensionConfig{}, "name", "typed_config")
	_ = allow(&uritemplatev3.UriTemplateMatchConfig{}, "path_template")
	_ = allow(&routev3.HeaderMatcher{}, "name", "exact_match", "safe_regex_match", "range_match",
		"present_match", "prefix_match", "suffix_match", "contains_match", "string_match",
		"invert_match", "treat_missing_header_as_empty")
	_ = allow(&typev3.Int64Range{}, "start", "end")
	_ = allow(&routev3.QueryParameterMatcher{}, "name", "string_match", "present_match")
	_ = allow(&matcherv3.RegexMatcher{}, "regex")
	_ = allow(&matcherv3.RegexMatchAndSubstitute{}, "pattern", "substitution")
)

func routeMatch(p path, m *routev3.RouteMatch) (model.RouteMatch, error) {
	var out model.RouteMatch
	if m == nil {
		return out, p.errorf("required")
	}
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		out.PathKind, out.Path = model.PathPrefix, ps.Prefix
	case *routev3.RouteMatch_Path:
		out.PathKind, out.Path = model.PathExact, ps.Path
	case *routev3.RouteMatch_SafeRegex:
		re, err := regex(p.field("safe_regex"), ps.SafeRegex)
		if err != nil {
			return out, err
		}
		out.PathKind, out.Path = model.PathRegex, re
	case *routev3.RouteMatch_PathSeparatedPrefix:
		sp := ps.PathSeparatedPrefix
		// Envoy's own rule: a non-empty path with no query or fragment, not ending in '/'.
		if len(sp) < 2 || !strings.HasPrefix(sp, "/") || strings.HasSuffix(sp, "/") || strings.ContainsAny(sp, "?#") {
			return out, p.field("path_separated_prefix").errorf("%q: want /segments without a trailing '/', '?' or '#'", sp)
		}
		out.PathKind, out.Path = model.PathSeparatedPrefix, sp
	case *routev3.RouteMatch_PathMatchPolicy:
		tp := p.field("path_match_policy").field("typed_config")
		if ps.PathMatchPolicy.GetTypedConfig() == nil {
			return out, tp.errorf("required")
		}
		msg, err := unpack(tp, ps.PathMatchPolicy.GetTypedConfig())
		if err != nil {
			return out, err
		}
		cfg, ok := msg.(*uritemplatev3.UriTemplateMatchConfig)
		if !ok {
			return out, tp.errorf("%s not supported (only %s)", ps.PathMatchPolicy.GetTypedConfig().GetTypeUrl(), uriTemplateMatchName)
		}
		if err := uriTemplate(cfg.GetPathTemplate()); err != nil {
			return out, tp.field("path_template").errorf("%q: %v", cfg.GetPathTemplate(), err)
		}
		out.PathKind, out.Path = model.PathTemplate, cfg.GetPathTemplate()
	default:
		return out, p.errorf("one of prefix, path, safe_regex, path_separated_prefix, path_match_policy required")
	}
	if v := m.GetCaseSensitive(); v != nil {
		out.CaseInsensitive = !v.GetValue()
	}
	for i, h := range m.GetHeaders() {
		hm, err := headerMatcher(p.field("headers").index(i), h)
		if err != nil {
			return out, err
		}
		out.Headers = append(out.Headers, hm)
	}
	for i, q := range m.GetQueryParameters() {
		qp := p.field("query_parameters").index(i)
		if q.GetName() == "" {
			return out, qp.field("name").errorf("required")
		}
		qm := model.QueryParameterMatcher{Name: q.GetName()}
		switch s := q.GetQueryParameterMatchSpecifier().(type) {
		case *routev3.QueryParameterMatcher_StringMatch:
			sm, err := stringMatcher(qp.field("string_match"), s.StringMatch)
			if err != nil {
				return out, err
			}
			qm.String = &sm
		case *routev3.QueryParameterMatcher_PresentMatch:
			qm.Present = s.PresentMatch
			if !qm.Present {
				return out, qp.field("present_match").errorf("must be true (use invert on a header match for absence)")
			}
		default:
			// No specifier: Envoy matches on presence.
			qm.Present = true
		}
		out.QueryParameters = append(out.QueryParameters, qm)
	}
	return out, nil
}

func headerMatcher(p path, h *routev3.HeaderMatcher) (model.HeaderMatcher, error) {
	out := model.HeaderMatcher{
		Name:                strings.ToLower(h.GetName()),
		Invert:              h.GetInvertMatch(),
		TreatMissingAsEmpty: h.GetTreatMissingHeaderAsEmpty(),
	}
	if !validHeaderName(out.Name, true) {
		return out, p.field("name").errorf("%q is not a header name", h.GetName())
	}
	nonEmpty := func(field, v string) error {
		if v == "" {
			return p.field(field).errorf("must not be empty")
		}
		return nil
	}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		out.String = model.StringMatcher{Kind: model.StringExact, Value: s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		out.String, err = model.StringMatcher{Kind: model.StringPrefix, Value: s.PrefixMatch}, nonEmpty("prefix_match", s.PrefixMatch)
	case *routev3.HeaderMatcher_SuffixMatch:
		out.String, err = model.StringMatcher{Kind: model.StringSuffix, Value: s.SuffixMatch}, nonEmpty("suffix_match", s.SuffixMatch)
	case *routev3.HeaderMatcher_ContainsMatch:
		out.String, err = model.StringMatcher{Kind: model.StringContains, Value: s.ContainsMatch}, nonEmpty("contains_match", s.ContainsMatch)
	case *routev3.HeaderMatcher_SafeRegexMatch:
		out.String.Kind = model.StringRegex
		out.String.Value, err = regex(p.field("safe_regex_match"), s.SafeRegexMatch)
	case *routev3.HeaderMatcher_StringMatch:
		out.String, err = stringMatcher(p.field("string_match"), s.StringMatch)
	case *routev3.HeaderMatcher_RangeMatch:
		out.Kind, out.RangeStart, out.RangeEnd = model.HeaderRange, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
		if out.RangeStart >= out.RangeEnd {
			err = p.field("range_match").errorf("start %d must be below end %d", out.RangeStart, out.RangeEnd)
		}
	case *routev3.HeaderMatcher_PresentMatch:
		out.Kind, out.Present = model.HeaderPresent, s.PresentMatch
	default:
		// No specifier: Envoy matches when the header is present.
		out.Kind, out.Present = model.HeaderPresent, true
	}
	return out, err
}

func stringMatcher(p path, m *matcherv3.StringMatcher) (model.StringMatcher, error) {
	out := model.StringMatcher{IgnoreCase: m.GetIgnoreCase()}
	switch s := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		out.Kind, out.Value = model.StringExact, s.Exact
	case *matcherv3.StringMatcher_Prefix:
		out.Kind, out.Value = model.StringPrefix, s.Prefix
	case *matcherv3.StringMatcher_Suffix:
		out.Kind, out.Value = model.StringSuffix, s.Suffix
	case *matcherv3.StringMatcher_Contains:
		out.Kind, out.Value = model.StringContains, s.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		if out.IgnoreCase {
			return out, p.field("ignore_case").errorf("has no effect for safe_regex (use (?i))")
		}
		re, err := regex(p.field("safe_regex"), s.SafeRegex)
		if err != nil {
			return out, err
		}
		out.Kind, out.Value = model.StringRegex, re
	default:
		return out, p.errorf("one of exact, prefix, suffix, contains, safe_regex required")
	}
	if out.Kind != model.StringExact && out.Value == "" {
		return out, p.errorf("empty pattern")
	}
	return out, nil
}

// regex checks an RE2 pattern; Go's regexp implements RE2 syntax.
func regex(p path, m *matcherv3.RegexMatcher) (string, error) {
	if m.GetRegex() == "" {
		return "", p.field("regex").errorf("required")
	}
	if _, err := regexp.Compile(m.GetRegex()); err != nil {
		return "", p.field("regex").errorf("%v", err)
	}
	return m.GetRegex(), nil
}

func regexRewrite(p path, m *matcherv3.RegexMatchAndSubstitute) (*model.RegexRewrite, error) {
	re, err := regex(p.field("pattern"), m.GetPattern())
	if err != nil {
		return nil, err
	}
	return &model.RegexRewrite{Pattern: re, Substitution: m.GetSubstitution()}, nil
}

// uriTemplate checks Envoy's uri_template syntax: "/" separated segments of literals, "*"
// (one segment), "**" (the rest, last only), and up to five variables "{name}" or
// "{name=pattern}"; the last segment may end in a literal suffix ("/**.m3u8").
func uriTemplate(t string) error {
	if !strings.HasPrefix(t, "/") {
		return errors.New("must start with /")
	}
	vars := map[string]bool{}
	segs := splitTemplate(t[1:])
	for i, seg := range segs {
		last := i == len(segs)-1
		if err := templateSegment(seg, last, vars, false); err != nil {
			return err
		}
	}
	if len(vars) > 5 {
		return errors.New("at most 5 variables")
	}
	return nil
}

// splitTemplate splits on '/' outside braces.
func splitTemplate(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func templateSegment(seg string, last bool, vars map[string]bool, inVar bool) error {
	if seg == "" {
		return errors.New("empty segment")
	}
	switch {
	case seg == "*":
		return nil
	case seg == "**":
		if !last {
			return errors.New("** must be the last segment")
		}
		return nil
	case strings.HasPrefix(seg, "{"):
		if inVar {
			return errors.New("nested variable")
		}
		end := strings.IndexByte(seg, '}')
		if end < 0 {
			return errors.New("unterminated {")
		}
		body, suffix := seg[1:end], seg[end+1:]
		name, pattern, hasPattern := strings.Cut(body, "=")
		if !templateVarName.MatchString(name) {
			return fmt.Errorf("bad variable name %q", name)
		}
		if vars[name] {
			return fmt.Errorf("duplicate variable %q", name)
		}
		vars[name] = true
		if hasPattern {
			sub := strings.Split(pattern, "/")
			for j, s := range sub {
				if err := templateSegment(s, last && j == len(sub)-1, vars, true); err != nil {
					return err
				}
			}
		}
		if suffix != "" {
			if !last {
				return errors.New("a suffix after a variable is only allowed in the last segment")
			}
			return templateLiteral(suffix)
		}
		return nil
	case strings.HasPrefix(seg, "**") || strings.HasPrefix(seg, "*"):
		suffix := strings.TrimLeft(seg, "*")
		if !last {
			return errors.New("a suffix after * is only allowed in the last segment")
		}
		return templateLiteral(suffix)
	}
	return templateLiteral(seg)
}

var templateVarName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,15}$`)

// templateLiteral accepts RFC 3986 pchars.
func templateLiteral(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()+,;:@%", c) >= 0:
		default:
			return fmt.Errorf("%q not allowed in a literal", c)
		}
	}
	return nil
}
