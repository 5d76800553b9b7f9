package route

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Character classes of Envoy's uri_template extension: a path segment is RFC 3986 pchar
// without '*' and '='; "*" matches one or more of them, "**" any run of them and '/'.
const (
	tmplLiteralChars = `a-zA-Z0-9\-._~%!$&'()+,;:@`
	tmplPathGlob     = `[` + tmplLiteralChars + `]+`
	tmplTextGlob     = `[` + tmplLiteralChars + `/]*`
)

var (
	tmplLiteralRE = regexp.MustCompile(`^[` + tmplLiteralChars + `]+$`)
	tmplVarNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
)

// Limits from Envoy's uri_template library.
const (
	tmplMaxVariables  = 5
	tmplMaxVarNameLen = 16
)

// compileTemplate turns a uri_template path pattern ("/users/{id}/files/{path=**}",
// "/videos/*/{file}.mp4") into an anchored regular expression, following Envoy's
// parseURLPatternSyntax and its validation rules. It also returns the literal text every
// matching path starts with.
func compileTemplate(pattern string) (*regexp.Regexp, string, error) {
	if len(pattern) == 0 || pattern[0] != '/' {
		return nil, "", errors.New("must start with '/'")
	}
	for i := 0; i < len(pattern); i++ {
		if pattern[i] <= ' ' || pattern[i] >= 0x7f {
			return nil, "", errors.New("must be printable ASCII without spaces")
		}
	}
	var (
		re       strings.Builder
		vars     = map[string]bool{}
		seenText bool // a "**" has been seen: no glob may follow it
	)
	re.WriteString("^/")
	p := pattern[1:]
	literal, inLiteral := "/", true
	addLiteral := func(s string) {
		if inLiteral {
			literal += s
		}
	}
	glob := func(op string) error {
		if seenText {
			return errors.New("glob after text glob")
		}
		if op == "**" {
			seenText = true
			re.WriteString(tmplTextGlob)
		} else {
			re.WriteString(tmplPathGlob)
		}
		inLiteral = false
		return nil
	}
	for p != "" {
		switch {
		case p[0] == '*':
			op := "*"
			if strings.HasPrefix(p, "**") {
				op = "**"
			}
			p = p[len(op):]
			if err := glob(op); err != nil {
				return nil, "", err
			}
		case p[0] == '{':
			end := strings.IndexByte(p, '}')
			if end < 0 {
				return nil, "", errors.New("unmatched variable bracket")
			}
			body := p[1:end]
			p = p[end+1:]
			name, match, hasMatch := strings.Cut(body, "=")
			if !tmplVarNameRE.MatchString(name) || len(name) > tmplMaxVarNameLen {
				return nil, "", fmt.Errorf("invalid variable name %q", name)
			}
			if vars[name] {
				return nil, "", fmt.Errorf("repeated variable name %q", name)
			}
			if len(vars) == tmplMaxVariables {
				return nil, "", errors.New("exceeded variable count limit")
			}
			vars[name] = true
			re.WriteString("(?P<" + name + ">")
			if !hasMatch {
				if err := glob("*"); err != nil {
					return nil, "", errors.New("implicit variable path glob after text glob")
				}
			} else {
				if match == "" {
					return nil, "", errors.New("empty variable match")
				}
				for i, seg := range strings.Split(match, "/") {
					if i > 0 {
						re.WriteByte('/')
					}
					switch seg {
					case "*", "**":
						if err := glob(seg); err != nil {
							return nil, "", err
						}
					default:
						if !tmplLiteralRE.MatchString(seg) {
							return nil, "", fmt.Errorf("invalid variable match %q", match)
						}
						re.WriteString(regexp.QuoteMeta(seg))
						addLiteral(seg)
					}
				}
			}
			re.WriteByte(')')
			inLiteral = false
		default:
			seg := p
			if i := strings.IndexByte(p, '/'); i >= 0 {
				seg = p[:i]
			}
			if !tmplLiteralRE.MatchString(seg) {
				return nil, "", fmt.Errorf("invalid literal %q", seg)
			}
			p = p[len(seg):]
			re.WriteString(regexp.QuoteMeta(seg))
			addLiteral(seg)
		}
		if p == "" {
			break
		}
		if p[0] == '/' {
			// A trailing '/' is an empty last segment; otherwise one more segment follows.
			re.WriteByte('/')
			addLiteral("/")
			p = p[1:]
			continue
		}
		// Text right after an operator or variable in the same segment is the suffix, which
		// must end the pattern ("{file}.mp4").
		if !tmplLiteralRE.MatchString(p) {
			return nil, "", errors.New("prefix match not supported")
		}
		re.WriteString(regexp.QuoteMeta(p))
		addLiteral(p)
		p = ""
	}
	re.WriteByte('$')
	c, err := regexp.Compile(re.String())
	if err != nil {
		return nil, "", err
	}
	return c, literal, nil
}

// regexLiteralPrefix returns the literal text every full match of pattern starts with, so that
// the path index can file regex routes too. It returns "" when nothing is certain.
func regexLiteralPrefix(pattern string) string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return ""
	}
	var b strings.Builder
	literalPrefix(re, &b)
	return b.String()
}

// literalPrefix appends re's leading literal to b and reports whether all of re was literal
// (so the caller may continue with what follows it).
func literalPrefix(re *syntax.Regexp, b *strings.Builder) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return false
		}
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
		return true
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpBeginLine:
		return true
	case syntax.OpCapture:
		return literalPrefix(re.Sub[0], b)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !literalPrefix(s, b) {
				return false
			}
		}
		return true
	}
	return false
}
