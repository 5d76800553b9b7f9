package route

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// routeMatch is a compiled model.RouteMatch.
type routeMatch struct {
	kind model.PathMatchKind
	path string // prefix, exact path or separated prefix as configured
	fold bool   // case-insensitive prefix/exact comparison
	re   *regexp.Regexp
	// literal is a lower-cased string every matching path starts with (case-insensitively);
	// the path index files the route under it.
	literal string

	headers []headerMatcher
	query   []queryMatcher
}

func compileRouteMatch(m *model.RouteMatch) (routeMatch, error) {
	rm := routeMatch{kind: m.PathKind, path: m.Path, fold: m.CaseInsensitive}
	switch m.PathKind {
	case model.PathPrefix, model.PathExact, model.PathSeparatedPrefix:
		if m.PathKind == model.PathSeparatedPrefix &&
			(m.Path == "" || m.Path[len(m.Path)-1] == '/' || strings.ContainsAny(m.Path, "?#")) {
			return rm, fmt.Errorf("match.path_separated_prefix %q: must not be empty, end with '/' or hold '?' or '#'", m.Path)
		}
		rm.literal = lowerASCII(m.Path)
	case model.PathRegex:
		re, err := compileFull(m.Path)
		if err != nil {
			return rm, fmt.Errorf("match.safe_regex: %w", err)
		}
		rm.re = re
		rm.literal = lowerASCII(regexLiteralPrefix(m.Path))
	case model.PathTemplate:
		re, lit, err := compileTemplate(m.Path)
		if err != nil {
			return rm, fmt.Errorf("match.path_match_policy %q: %w", m.Path, err)
		}
		rm.re = re
		rm.literal = lowerASCII(lit)
	default:
		return rm, fmt.Errorf("match: unknown path match kind %d", m.PathKind)
	}
	for i := range m.Headers {
		hm, err := compileHeaderMatcher(&m.Headers[i])
		if err != nil {
			return rm, fmt.Errorf("match.headers[%d] %q: %w", i, m.Headers[i].Name, err)
		}
		rm.headers = append(rm.headers, hm)
	}
	for i := range m.QueryParameters {
		q := &m.QueryParameters[i]
		qm := queryMatcher{name: q.Name}
		if q.String != nil {
			sm, err := compileStringMatcher(q.String)
			if err != nil {
				return rm, fmt.Errorf("match.query_parameters[%d] %q: %w", i, q.Name, err)
			}
			qm.str = &sm
		}
		rm.query = append(rm.query, qm)
	}
	return rm, nil
}

// matches reports whether the request matches. path is h.Path without query and fragment.
func (m *routeMatch) matches(path string, h *header.Map) bool {
	switch m.kind {
	case model.PathPrefix:
		if m.fold {
			if !hasPrefixFold(path, m.path) {
				return false
			}
		} else if !strings.HasPrefix(path, m.path) {
			return false
		}
	case model.PathExact:
		if m.fold {
			if !equalFoldASCII(path, m.path) {
				return false
			}
		} else if path != m.path {
			return false
		}
	case model.PathSeparatedPrefix:
		n := len(m.path)
		if len(path) < n || (len(path) > n && path[n] != '/') {
			return false
		}
		if m.fold {
			if !equalFoldASCII(path[:n], m.path) {
				return false
			}
		} else if path[:n] != m.path {
			return false
		}
	default: // regex and template
		if !m.re.MatchString(path) {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(h) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := queryOf(h.Path)
		for i := range m.query {
			if !m.query[i].matches(q) {
				return false
			}
		}
	}
	return true
}

// matchedLen is the length of the part of path (without query) that the route matched, the
// part prefix_rewrite replaces.
func (m *routeMatch) matchedLen(path string) int {
	switch m.kind {
	case model.PathPrefix, model.PathSeparatedPrefix:
		if len(m.path) <= len(path) {
			return len(m.path)
		}
	case model.PathExact:
		if len(m.path) <= len(path) {
			return len(m.path)
		}
	}
	return len(path)
}

// stringMatcher is a compiled model.StringMatcher.
type stringMatcher struct {
	kind  model.StringMatchKind
	value string // lower-cased when fold
	fold  bool
	re    *regexp.Regexp
}

func compileStringMatcher(s *model.StringMatcher) (stringMatcher, error) {
	sm := stringMatcher{kind: s.Kind, value: s.Value, fold: s.IgnoreCase}
	switch s.Kind {
	case model.StringExact, model.StringPrefix, model.StringSuffix, model.StringContains:
		if sm.fold {
			sm.value = lowerASCII(s.Value)
		}
	case model.StringRegex:
		// ignore_case has no effect on safe_regex in Envoy; patterns carry their own (?i).
		re, err := compileFull(s.Value)
		if err != nil {
			return sm, fmt.Errorf("safe_regex: %w", err)
		}
		sm.re = re
		sm.fold = false
	default:
		return sm, fmt.Errorf("unknown string match kind %d", s.Kind)
	}
	return sm, nil
}

func (s *stringMatcher) match(v string) bool {
	switch s.kind {
	case model.StringExact:
		if s.fold {
			return equalFoldASCII(v, s.value)
		}
		return v == s.value
	case model.StringPrefix:
		if s.fold {
			return hasPrefixFold(v, s.value)
		}
		return strings.HasPrefix(v, s.value)
	case model.StringSuffix:
		if s.fold {
			return len(v) >= len(s.value) && equalFoldASCII(v[len(v)-len(s.value):], s.value)
		}
		return strings.HasSuffix(v, s.value)
	case model.StringContains:
		if s.fold {
			return containsFold(v, s.value)
		}
		return strings.Contains(v, s.value)
	case model.StringRegex:
		return s.re.MatchString(v)
	}
	return false
}

// headerMatcher is a compiled model.HeaderMatcher.
type headerMatcher struct {
	name         string // lower-case
	pseudo       bool
	kind         model.HeaderMatchKind
	str          stringMatcher
	present      bool
	start, end   int64
	invert       bool
	missingEmpty bool
}

func compileHeaderMatcher(m *model.HeaderMatcher) (headerMatcher, error) {
	hm := headerMatcher{
		name: lowerASCII(m.Name), kind: m.Kind, present: m.Present,
		start: m.RangeStart, end: m.RangeEnd, invert: m.Invert, missingEmpty: m.TreatMissingAsEmpty,
	}
	if hm.name == "" {
		return hm, fmt.Errorf("empty header name")
	}
	hm.pseudo = hm.name[0] == ':'
	switch m.Kind {
	case model.HeaderString:
		sm, err := compileStringMatcher(&m.String)
		if err != nil {
			return hm, fmt.Errorf("string_match: %w", err)
		}
		hm.str = sm
	case model.HeaderPresent:
	case model.HeaderRange:
		if m.RangeEnd <= m.RangeStart {
			return hm, fmt.Errorf("range_match: end %d must be greater than start %d", m.RangeEnd, m.RangeStart)
		}
	default:
		return hm, fmt.Errorf("unknown header match kind %d", m.Kind)
	}
	return hm, nil
}

// matches follows Envoy's HeaderUtility::matchHeaders: a missing header fails every matcher
// but a presence check (whatever invert says) unless treat_missing_as_empty makes it an empty
// value.
func (m *headerMatcher) matches(h *header.Map) bool {
	v, ok := m.lookup(h)
	if !ok {
		if !m.missingEmpty {
			if m.kind == model.HeaderPresent {
				return m.present == m.invert
			}
			return false
		}
		v = ""
	}
	var match bool
	switch m.kind {
	case model.HeaderString:
		match = m.str.match(v)
	case model.HeaderPresent:
		match = m.present
	case model.HeaderRange:
		n, ok := parseInt64(v)
		match = ok && n >= m.start && n < m.end
	}
	return match != m.invert
}

// lookup returns the header's value, with several fields of the name joined by ",". Only the
// multi-valued case allocates.
func (m *headerMatcher) lookup(h *header.Map) (string, bool) {
	if m.pseudo {
		return h.Get(m.name)
	}
	fs := h.Fields()
	first := -1
	for i := range fs {
		if fs[i].Name != m.name {
			continue
		}
		if first >= 0 {
			return joinValues(fs[first:], m.name), true
		}
		first = i
	}
	if first < 0 {
		return "", false
	}
	return fs[first].Value, true
}

func joinValues(fs []header.Field, name string) string {
	var b strings.Builder
	for i := range fs {
		if fs[i].Name != name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(fs[i].Value)
	}
	return b.String()
}

// parseInt64 parses like absl::SimpleAtoi: surrounding ASCII whitespace and a sign allowed,
// overflow rejected.
func parseInt64(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

// queryMatcher is a compiled model.QueryParameterMatcher; str nil means presence only.
type queryMatcher struct {
	name string
	str  *stringMatcher
}

// matches looks only at the first parameter of the name, undecoded, as Envoy does.
func (m *queryMatcher) matches(query string) bool {
	v, ok := queryParam(query, m.name)
	if !ok {
		return false
	}
	return m.str == nil || m.str.match(v)
}

// queryOf returns the query string of a :path (without '?' and fragment), or "".
func queryOf(p string) string {
	i := strings.IndexByte(p, '?')
	if i < 0 {
		return ""
	}
	q := p[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	return q
}

// queryParam scans query for the first parameter called name. A parameter without '=' has an
// empty value.
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var part string
		if i := strings.IndexByte(query, '&'); i >= 0 {
			part, query = query[:i], query[i+1:]
		} else {
			part, query = query, ""
		}
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if k == name {
			return v, true
		}
	}
	return "", false
}

// compileFull compiles an RE2 pattern for a full match, as Envoy's safe_regex requires. The
// pattern is parsed alone first: wrapped unchecked, "a)|(b" would compile into something else.
func compileFull(pattern string) (*regexp.Regexp, error) {
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

func lowerASCII(s string) string { return header.Lower(s) }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && equalFoldASCII(s[:len(prefix)], prefix)
}

// containsFold reports whether s contains sub, ignoring ASCII case; sub is lower-case.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if lower(s[i]) == sub[0] && equalFoldASCII(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
