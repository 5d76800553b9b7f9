// Package matcher compiles Envoy's StringMatcher, HeaderMatcher and PathMatcher, as HTTP
// filters' configurations carry them, into values that match without allocating (but for a
// header sent several times, whose values are joined as Envoy joins them).
//
// The route table has its own matchers, compiled from the decoded model; filters receive protos
// and cannot reach the decoder, so they compile here, with the same semantics.
package matcher

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
)

type stringKind uint8

const (
	kindExact stringKind = iota
	kindPrefix
	kindSuffix
	kindContains
	kindRegex
)

// String is a compiled envoy.type.matcher.v3.StringMatcher.
type String struct {
	kind  stringKind
	value string // lower-case when fold
	fold  bool
	re    *regexp.Regexp
}

// NewString compiles m. Errors name the field below m ("safe_regex.regex: …").
func NewString(m *matcherv3.StringMatcher) (String, error) {
	s := String{fold: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		s.kind, s.value = kindExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		s.kind, s.value = kindPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		s.kind, s.value = kindSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		s.kind, s.value = kindContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		// As in Envoy, ignore_case has no effect on safe_regex (patterns carry their own
		// (?i)); it is accepted, since Envoy accepts it and translators emit it.
		s.fold = false
		re, err := Regex(p.SafeRegex)
		if err != nil {
			return s, fmt.Errorf("safe_regex.%w", err)
		}
		s.kind, s.re = kindRegex, re
		return s, nil
	default:
		return s, errors.New("one of exact, prefix, suffix, contains, safe_regex required")
	}
	if s.kind != kindExact && s.value == "" {
		return s, errors.New("empty pattern")
	}
	if s.fold {
		s.value = lowerASCII(s.value)
	}
	return s, nil
}

// Regex compiles an RE2 pattern (Go's regexp implements RE2 syntax) to match whole values, as
// Envoy's safe_regex does.
func Regex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if m.GetRegex() == "" {
		return nil, errors.New("regex: required")
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex: %v", err)
	}
	return re, nil
}

// Match reports whether v matches. ignore_case folds ASCII only, as Envoy does.
func (s *String) Match(v string) bool {
	switch s.kind {
	case kindExact:
		if s.fold {
			return len(v) == len(s.value) && equalFold(v, s.value)
		}
		return v == s.value
	case kindPrefix:
		if s.fold {
			return len(v) >= len(s.value) && equalFold(v[:len(s.value)], s.value)
		}
		return strings.HasPrefix(v, s.value)
	case kindSuffix:
		if s.fold {
			return len(v) >= len(s.value) && equalFold(v[len(v)-len(s.value):], s.value)
		}
		return strings.HasSuffix(v, s.value)
	case kindContains:
		if s.fold {
			for i := 0; i+len(s.value) <= len(v); i++ {
				if equalFold(v[i:i+len(s.value)], s.value) {
					return true
				}
			}
			return false
		}
		return strings.Contains(v, s.value)
	case kindRegex:
		return s.re.MatchString(v)
	}
	return false
}

// lowerASCII lower-cases ASCII letters only, as Envoy's ignore_case does.
func lowerASCII(v string) string {
	b := []byte(v)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// equalFold compares v with lower, already lower-case, of the same length, folding ASCII.
func equalFold(v, lower string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

type headerKind uint8

const (
	headerString headerKind = iota
	headerPresent
	headerRange
)

// Header is a compiled envoy.config.route.v3.HeaderMatcher. Pseudo-headers (":method",
// ":path", ":authority", ":scheme") are matched like any other header.
type Header struct {
	name         string // lower-case
	kind         headerKind
	str          String
	present      bool
	start, end   int64
	invert       bool
	missingEmpty bool
}

// NewHeader compiles m. Errors name the field below m.
func NewHeader(m *routev3.HeaderMatcher) (Header, error) {
	h := Header{
		name: strings.ToLower(m.GetName()), invert: m.GetInvertMatch(),
		missingEmpty: m.GetTreatMissingHeaderAsEmpty(),
	}
	if !validName(h.name) {
		return h, fmt.Errorf("name: %q is not a header name", m.GetName())
	}
	var err error
	mk := func(field string, sm *matcherv3.StringMatcher) {
		if h.str, err = NewString(sm); err != nil {
			err = fmt.Errorf("%s: %w", field, err)
		}
	}
	switch p := m.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_ExactMatch:
		mk("exact_match", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: p.ExactMatch}})
	case *routev3.HeaderMatcher_PrefixMatch:
		mk("prefix_match", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p.PrefixMatch}})
	case *routev3.HeaderMatcher_SuffixMatch:
		mk("suffix_match", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: p.SuffixMatch}})
	case *routev3.HeaderMatcher_ContainsMatch:
		mk("contains_match", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: p.ContainsMatch}})
	case *routev3.HeaderMatcher_SafeRegexMatch:
		mk("safe_regex_match", &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: p.SafeRegexMatch}})
	case *routev3.HeaderMatcher_StringMatch:
		mk("string_match", p.StringMatch)
	case *routev3.HeaderMatcher_RangeMatch:
		h.kind, h.start, h.end = headerRange, p.RangeMatch.GetStart(), p.RangeMatch.GetEnd()
		if h.start >= h.end {
			err = fmt.Errorf("range_match: start %d must be below end %d", h.start, h.end)
		}
	case *routev3.HeaderMatcher_PresentMatch:
		h.kind, h.present = headerPresent, p.PresentMatch
	default:
		// No specifier: Envoy matches when the header is present.
		h.kind, h.present = headerPresent, true
	}
	return h, err
}

// Match follows Envoy's HeaderUtility::matchHeaders: a missing header fails every matcher but
// a presence check (whatever invert says) unless treat_missing_header_as_empty makes it an
// empty value.
func (m *Header) Match(h *header.Map) bool {
	v, ok := lookup(h, m.name)
	if !ok {
		if !m.missingEmpty {
			if m.kind == headerPresent {
				return m.present == m.invert
			}
			return false
		}
		v = ""
	}
	var match bool
	switch m.kind {
	case headerString:
		match = m.str.Match(v)
	case headerPresent:
		match = m.present
	case headerRange:
		n, ok := header.ParseDecimal(v)
		match = ok && n >= m.start && n < m.end
	}
	return match != m.invert
}

// lookup returns name's value, several fields of the name joined by "," (only that case
// allocates).
func lookup(h *header.Map, name string) (string, bool) {
	if name[0] == ':' {
		return h.Get(name)
	}
	fs := h.Fields()
	first := -1
	for i := range fs {
		if fs[i].Name != name {
			continue
		}
		if first >= 0 {
			var b strings.Builder
			for _, f := range fs[first:] {
				if f.Name == name {
					if b.Len() > 0 {
						b.WriteByte(',')
					}
					b.WriteString(f.Value)
				}
			}
			return b.String(), true
		}
		first = i
	}
	if first < 0 {
		return "", false
	}
	return fs[first].Value, true
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	if n[0] == ':' {
		n = n[1:]
		if n == "" {
			return false
		}
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Path is a compiled envoy.type.matcher.v3.PathMatcher: it matches the request path without
// its query string and fragment.
type Path struct{ str String }

// NewPath compiles m.
func NewPath(m *matcherv3.PathMatcher) (Path, error) {
	sm := m.GetPath()
	if sm == nil {
		return Path{}, errors.New("path: required")
	}
	s, err := NewString(sm)
	if err != nil {
		return Path{}, fmt.Errorf("path: %w", err)
	}
	return Path{s}, nil
}

// Match reports whether the path of target (an origin-form request target) matches.
func (p *Path) Match(target string) bool {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return p.str.Match(target)
}
