package route

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// pathRewrite is a compiled prefix_rewrite or regex_rewrite plus host_rewrite_literal.
type pathRewrite struct {
	prefix    string
	hasPrefix bool
	re        *regexp.Regexp
	template  string // regex_rewrite substitution in Go's Expand syntax
	host      string
}

func (rw *pathRewrite) rewritesPath() bool { return rw.hasPrefix || rw.re != nil }

func compileRegexRewrite(r *model.RegexRewrite) (*regexp.Regexp, string, error) {
	re, err := regexp.Compile(r.Pattern)
	if err != nil {
		return nil, "", fmt.Errorf("pattern: %w", err)
	}
	tmpl, err := convertSubstitution(r.Substitution, re.NumSubexp())
	if err != nil {
		return nil, "", fmt.Errorf("substitution: %w", err)
	}
	return re, tmpl, nil
}

// convertSubstitution turns an RE2 rewrite string (\0-\9 for groups, \\ for a backslash) into
// Go's Expand template, escaping the '$' Go would otherwise read as a group reference.
func convertSubstitution(s string, groups int) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '$':
			b.WriteString("$$")
		case '\\':
			i++
			if i == len(s) {
				return "", fmt.Errorf("%q: trailing backslash", s)
			}
			switch d := s[i]; {
			case d == '\\':
				b.WriteByte('\\')
			case d >= '0' && d <= '9':
				if int(d-'0') > groups {
					return "", fmt.Errorf("%q: \\%c names a group the pattern does not have", s, d)
				}
				b.WriteString("${")
				b.WriteByte(d)
				b.WriteByte('}')
			default:
				return "", fmt.Errorf("%q: invalid escape \\%c", s, d)
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// appendPath appends the rewritten form of p (a full :path, query included) to dst. matched is
// how much of p's path part the route matched, the part prefix_rewrite replaces. The query and
// fragment are kept as they were.
func (rw *pathRewrite) appendPath(dst []byte, p string, matched int) []byte {
	if rw.hasPrefix {
		dst = append(dst, rw.prefix...)
		return append(dst, p[matched:]...)
	}
	path := pathOnly(p)
	last := 0
	for _, m := range rw.re.FindAllStringSubmatchIndex(path, -1) {
		dst = append(dst, path[last:m[0]]...)
		dst = rw.re.ExpandString(dst, rw.template, path, m)
		last = m[1]
	}
	dst = append(dst, path[last:]...)
	return append(dst, p[len(path):]...)
}

// RewriteRequest applies the route's host_rewrite_literal and its prefix_rewrite (replacing
// only the matched prefix, or the whole matched path for exact, regex and template routes) or
// regex_rewrite (every match, as RE2's GlobalReplace). The query string is kept.
//
// The new path is written into buf, which the caller owns and reuses across requests, and
// h.Path is set to a string that aliases it: buf must stay untouched while h is in use. The
// possibly grown buf is returned. With buf large enough, a prefix rewrite allocates nothing; a
// regex rewrite allocates its match positions. Call it after Select and before the request
// headers are sent; it leaves h unchanged when the route rewrites nothing or does not forward.
func (e *Entry) RewriteRequest(h *header.Map, buf []byte) []byte {
	if e.Kind != ActionForward {
		// A redirect's rewrites shape its Location, not the request.
		return buf
	}
	rw := &e.rewrite
	if rw.host != "" {
		h.Authority = rw.host
	}
	if !rw.rewritesPath() {
		return buf
	}
	if overlaps(buf, h.Path) {
		// Rewriting twice into the same buffer would overwrite the path while reading it.
		buf = make([]byte, 0, len(h.Path)+len(rw.prefix)+16)
	}
	matched := e.match.matchedLen(pathOnly(h.Path))
	buf = rw.appendPath(buf[:0], h.Path, matched)
	h.Path = unsafe.String(unsafe.SliceData(buf), len(buf))
	return buf
}

// overlaps reports whether s points into buf's backing array.
func overlaps(buf []byte, s string) bool {
	if cap(buf) == 0 || len(s) == 0 {
		return false
	}
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(buf[:1])))
	s0 := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return s0 >= b0 && s0 < b0+uintptr(cap(buf))
}

// redirect is a compiled model.RedirectAction.
type redirect struct {
	scheme       string // "" keeps the request's
	host         string
	port         string // ":8443", "" keeps the request's
	path         string
	pathHasQuery bool
	code         int
	stripQuery   bool
	rewritesPath bool // prefix_rewrite or regex_rewrite (in Entry.rewrite)
}

func compileRedirect(r *model.RedirectAction) (*redirect, error) {
	rd := &redirect{
		scheme: strings.ToLower(r.Scheme), host: r.Host, path: r.Path,
		code: r.Code, stripQuery: r.StripQuery,
	}
	if r.Port != 0 {
		if r.Port > 65535 {
			return nil, fmt.Errorf("redirect.port_redirect %d out of range", r.Port)
		}
		rd.port = ":" + strconv.FormatUint(uint64(r.Port), 10)
	}
	rd.pathHasQuery = strings.Contains(r.Path, "?")
	switch rd.code {
	case 0:
		rd.code = 301
	case 301, 302, 303, 307, 308:
	default:
		return nil, fmt.Errorf("redirect.response_code %d is not a redirect", rd.code)
	}
	if r.Path != "" && (r.PrefixRewrite != "" || r.RegexRewrite != nil) {
		return nil, fmt.Errorf("redirect: path_redirect excludes prefix_rewrite and regex_rewrite")
	}
	return rd, nil
}

// Redirect builds a redirect route's response: its status (301 unless configured) and
// Location, following Envoy's rules: scheme_redirect or https_redirect replaces the scheme;
// host_redirect replaces the host and drops the request's port; port_redirect replaces the
// port; otherwise the request's port is kept unless the scheme changes and it was the old
// scheme's default (so http://a:80 becomes https://a). A port_redirect that is the new
// scheme's default is not written. path_redirect (whose own query wins), prefix_rewrite or regex_rewrite build
// the path; strip_query drops the query.
//
// secure says whether the downstream connection is TLS; it decides the original scheme when the
// request has no :scheme. The location is written into buf and aliases it, so it is valid only
// until buf is reused.
func (e *Entry) Redirect(h *header.Map, secure bool, buf []byte) (code int, location string) {
	rd := e.redirect
	if rd == nil {
		return 0, ""
	}
	orig := h.Scheme
	if orig == "" {
		orig = "http"
		if secure {
			orig = "https"
		}
	}
	scheme := orig
	if rd.scheme != "" {
		scheme = rd.scheme
	}
	// Envoy decides port stripping by x-forwarded-proto, so that http://foo:80 arriving over a
	// TLS-terminating load balancer is handled by the scheme the client used.
	proto := orig
	if xfp, ok := h.Get("x-forwarded-proto"); ok && xfp != "" {
		proto = xfp
	}

	host, port := h.Authority, ""
	switch {
	case rd.host != "":
		host = rd.host
		if rd.port != "" {
			// host_redirect may carry its own port; port_redirect replaces it.
			host = host[:hostLen(host)]
		}
	default:
		hl := hostLen(host)
		reqPort := host[hl:]
		if reqPort != "" {
			drop := rd.port != ""
			if !strings.EqualFold(scheme, proto) {
				drop = drop || (strings.EqualFold(proto, "https") && reqPort == ":443") ||
					(strings.EqualFold(proto, "http") && reqPort == ":80")
			}
			if drop {
				host = host[:hl]
			}
		}
	}
	if rd.port != "" && !isDefaultPort(scheme, rd.port) {
		port = rd.port
	}

	if overlaps(buf, h.Path) || overlaps(buf, h.Authority) {
		buf = nil // writing the location must not overwrite what it is built from
	}
	b := buf[:0]
	b = append(b, scheme...)
	b = append(b, "://"...)
	b = append(b, host...)
	b = append(b, port...)
	pathStart := len(b)
	switch {
	case rd.path != "":
		b = append(b, rd.path...)
		if !rd.pathHasQuery {
			if q := strings.IndexByte(h.Path, '?'); q >= 0 {
				b = append(b, h.Path[q:]...)
			}
		}
	case rd.rewritesPath:
		b = e.rewrite.appendPath(b, h.Path, e.match.matchedLen(pathOnly(h.Path)))
	default:
		b = append(b, h.Path...)
	}
	if len(b) == pathStart || b[pathStart] != '/' {
		b = append(b, 0)
		copy(b[pathStart+1:], b[pathStart:len(b)-1])
		b[pathStart] = '/'
	}
	if rd.stripQuery && !rd.pathHasQuery {
		if q := strings.IndexByte(unsafe.String(unsafe.SliceData(b[pathStart:]), len(b)-pathStart), '?'); q >= 0 {
			b = b[:pathStart+q]
		}
	}
	return rd.code, unsafe.String(unsafe.SliceData(b), len(b))
}

func isDefaultPort(scheme, port string) bool {
	return (port == ":80" && strings.EqualFold(scheme, "http")) ||
		(port == ":443" && strings.EqualFold(scheme, "https"))
}
