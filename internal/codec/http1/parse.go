package http1

import (
	"bytes"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// Limits bound what a peer can make the codec buffer. Zero fields take the defaults.
type Limits struct {
	// MaxHeaderBytes bounds the request or status line plus all field lines (and, separately,
	// a trailer section). Default 60 KiB, Envoy's max_request_headers_kb. Exceeding it is 431.
	MaxHeaderBytes int
	// MaxHeaders bounds the number of field lines. Default 100. Exceeding it is 431.
	MaxHeaders int
	// MaxRequestLine bounds the request line. Default 16 KiB. Exceeding it is 414.
	MaxRequestLine int
}

// Default limits.
const (
	DefaultMaxHeaderBytes = 60 << 10
	DefaultMaxHeaders     = 100
	DefaultMaxRequestLine = 16 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxRequestLine <= 0 {
		l.MaxRequestLine = DefaultMaxRequestLine
	}
	return l
}

// FramingKind says how a message body is delimited (RFC 9112 §6.3).
type FramingKind uint8

const (
	None       FramingKind = iota // no body
	Length                        // Content-Length bytes
	Chunked                       // chunked transfer coding
	UntilClose                    // until the connection closes (responses only)
)

func (k FramingKind) String() string {
	switch k {
	case None:
		return "none"
	case Length:
		return "length"
	case Chunked:
		return "chunked"
	case UntilClose:
		return "until-close"
	}
	return "invalid"
}

// Framing is a body's delimitation; Length is meaningful for Kind == Length.
type Framing struct {
	Kind   FramingKind
	Length int64
}

// RequestHead is what a request head says beyond its fields.
type RequestHead struct {
	Major, Minor int
	Framing      Framing
	// KeepAlive is the client's wish after this request: HTTP/1.1 unless "Connection: close",
	// HTTP/1.0 only with "Connection: keep-alive".
	KeepAlive bool
	// Expect100 is set for "Expect: 100-continue" in HTTP/1.1 (RFC 9110 §10.1.1 says to ignore
	// it in HTTP/1.0).
	Expect100 bool
	// Upgrade is the Upgrade field value when Connection lists "upgrade" (HTTP/1.1 only).
	Upgrade string
	// HeaderBytes is the size of the head on the wire, including its final empty line.
	HeaderBytes int
}

// ResponseHead is what a status line and response head say beyond the fields.
type ResponseHead struct {
	Major, Minor int
	Status       int
	Reason       string
	Framing      Framing
	// KeepAlive is false when the server closes after this response, including every
	// UntilClose response.
	KeepAlive bool
}

// fieldInfo gathers the fields that decide framing and connection handling while the field
// lines are parsed, so the Map is never searched afterwards.
type fieldInfo struct {
	hosts     int
	host      []byte
	clSeen    bool
	cl        int64
	teSeen    bool
	teChunked int  // how many times chunked was listed
	teLast    bool // the last coding listed was chunked
	teOther   bool // a coding other than chunked was listed
	teBad     bool // an empty or non-token list member
	clBad     bool
	close     bool
	keepAlive bool
	upgradeOK bool // Connection lists upgrade
	upgrade   []byte
	expect100 bool
}

// ParseRequestHead parses a request head at the start of buf into h and rh and returns its
// length. It returns ErrNeedMore when buf holds only part of a head that is, so far, valid and
// within lim, or an *Error. Field names are lower-cased in place in buf and every string put
// into h aliases buf.
func ParseRequestHead(buf []byte, h *header.Map, rh *RequestHead, lim Limits) (int, error) {
	lim = lim.withDefaults()
	h.Reset()
	*rh = RequestHead{}

	// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
	p := 0
	for p < len(buf) && buf[p] == '\r' {
		if p+1 == len(buf) {
			return 0, ErrNeedMore
		}
		if buf[p+1] != '\n' {
			return 0, errBareCR
		}
		p += 2
		if p > lim.MaxHeaderBytes {
			return 0, errHeadTooLarge
		}
	}
	i := bytes.IndexByte(buf[p:], '\n')
	if i < 0 {
		if len(buf)-p > lim.MaxRequestLine {
			return 0, errURITooLong
		}
		if len(buf) > lim.MaxHeaderBytes {
			return 0, errHeadTooLarge
		}
		return 0, ErrNeedMore
	}
	if i == 0 || buf[p+i-1] != '\r' {
		return 0, errBareLF
	}
	line := buf[p : p+i-1]
	if len(line) > lim.MaxRequestLine {
		return 0, errURITooLong
	}
	target, err := parseRequestLine(line, h, rh)
	if err != nil {
		return 0, err
	}
	p += i + 1

	var fi fieldInfo
	n, err := parseFields(buf, p, h, &fi, lim, false)
	if err != nil {
		return 0, err
	}
	rh.HeaderBytes = n
	if err := requestSemantics(h, rh, &fi, target); err != nil {
		return 0, err
	}
	return n, nil
}

// parseRequestLine parses method SP request-target SP HTTP-version (RFC 9112 §3) and returns
// the raw target, whose form depends on the method.
func parseRequestLine(line []byte, h *header.Map, rh *RequestHead) ([]byte, error) {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		if len(line) > 0 && line[0] == ' ' {
			return nil, errMethod
		}
		return nil, errRequestLine
	}
	method := line[:sp]
	if !allToken(method) {
		return nil, errMethod
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 {
		// HTTP/0.9's "GET /path" has no version; it is not supported in any form.
		return nil, errRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if len(target) == 0 {
		return nil, errRequestLine
	}
	for _, c := range target {
		if !isTarget[c] {
			return nil, errTarget
		}
	}
	major, minor, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	if major != 1 || minor > 1 {
		return nil, errVersionNotSupp
	}
	rh.Major, rh.Minor = major, minor
	h.Method = internMethod(method)
	return target, nil
}

// parseVersion parses exactly "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3).
func parseVersion(v []byte) (major, minor int, err error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, errVersion
	}
	return int(v[5] - '0'), int(v[7] - '0'), nil
}

// internMethod returns a constant for the common methods so they do not pin the read buffer
// in anything that keeps them (stats, access logs).
func internMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return str(m)
}

// parseFields parses field lines from buf[p:] through the empty line that ends the section and
// returns the offset just past it. Bytes before p count toward MaxHeaderBytes. Trailer sections
// (trailer == true) refuse fields that would change framing or routing after the fact.
func parseFields(buf []byte, p int, h *header.Map, fi *fieldInfo, lim Limits, trailer bool) (int, error) {
	count := 0
	for {
		i := bytes.IndexByte(buf[p:], '\n')
		if i < 0 {
			// Reject an incomplete line early if it already breaks a rule, so a peer cannot
			// park a connection on a line that can never become valid.
			if len(buf) > lim.MaxHeaderBytes {
				return 0, errHeadTooLarge
			}
			if p < len(buf) && isOWS(buf[p]) {
				return 0, errObsFold
			}
			return 0, ErrNeedMore
		}
		end := p + i
		if i == 0 || buf[end-1] != '\r' {
			return 0, errBareLF
		}
		if end+1 > lim.MaxHeaderBytes {
			return 0, errHeadTooLarge
		}
		line := buf[p : end-1]
		p = end + 1
		if len(line) == 0 {
			return p, nil
		}
		if count++; count > lim.MaxHeaders {
			return 0, errTooManyFields
		}
		if isOWS(line[0]) {
			return 0, errObsFold
		}
		// Lower-case the name in place while checking it is a token: one pass, no copy.
		j := 0
		for ; j < len(line); j++ {
			c := line[j]
			if !isToken[c] {
				break
			}
			if 'A' <= c && c <= 'Z' {
				line[j] = c + 'a' - 'A'
			}
		}
		if j == 0 || j == len(line) || line[j] != ':' {
			// Covers "Name :", "Name\t:", "Na me:", NUL and every other non-token byte.
			return 0, errFieldName
		}
		name := line[:j]
		v := line[j+1:]
		for len(v) > 0 && isOWS(v[0]) {
			v = v[1:]
		}
		for len(v) > 0 && isOWS(v[len(v)-1]) {
			v = v[:len(v)-1]
		}
		if !validFieldValue(v) {
			if bytes.IndexByte(v, '\r') >= 0 {
				return 0, errBareCR
			}
			return 0, errFieldValue
		}
		if trailer {
			if forbiddenTrailer(name) {
				return 0, errTrailerField
			}
			h.Add(str(name), str(v))
			continue
		}
		if fi.note(name, v) {
			continue
		}
		h.Add(str(name), str(v))
	}
}

// forbiddenTrailer lists fields whose meaning depends on arriving before the body (RFC 9110
// §6.5.1): framing, routing, connection management and authentication.
func forbiddenTrailer(name []byte) bool {
	switch string(name) {
	case "content-length", "transfer-encoding", "host", "connection", "keep-alive",
		"proxy-connection", "te", "trailer", "upgrade", "expect", "content-type",
		"content-encoding", "content-range", "authorization", "proxy-authorization",
		"cookie", "set-cookie", "cache-control", "max-forwards":
		return true
	}
	return false
}

// note records a field that drives framing or connection handling. It reports true when the
// field must not be added to the Map (Host, which becomes the Authority).
func (fi *fieldInfo) note(name, v []byte) bool {
	switch string(name) {
	case "host":
		fi.hosts++
		fi.host = v
		return true
	case "content-length":
		fi.noteContentLength(v)
	case "transfer-encoding":
		fi.teSeen = true
		for rest := v; ; {
			var e []byte
			e, rest = nextListElem(rest)
			switch {
			case !allToken(e):
				fi.teBad = true
			case equalFoldBytes(e, "chunked"):
				fi.teChunked++
				fi.teLast = true
			default:
				fi.teOther = true
				fi.teLast = false
			}
			if rest == nil {
				break
			}
		}
	case "connection":
		for rest := v; ; {
			var e []byte
			e, rest = nextListElem(rest)
			switch {
			case equalFoldBytes(e, "close"):
				fi.close = true
			case equalFoldBytes(e, "keep-alive"):
				fi.keepAlive = true
			case equalFoldBytes(e, "upgrade"):
				fi.upgradeOK = true
			}
			if rest == nil {
				break
			}
		}
	case "upgrade":
		if fi.upgrade == nil {
			fi.upgrade = v
		}
	case "expect":
		fi.expect100 = fi.expect100 || equalFoldBytes(v, "100-continue")
	}
	return false
}

// noteContentLength accepts 1*DIGIT, and lists or repeats of one identical value (RFC 9110
// §8.6); anything else poisons the message.
func (fi *fieldInfo) noteContentLength(v []byte) {
	for rest := v; ; {
		var e []byte
		e, rest = nextListElem(rest)
		n, ok := parseDecimal(e)
		if !ok || (fi.clSeen && n != fi.cl) {
			fi.clBad = true
		}
		fi.clSeen, fi.cl = true, n
		if rest == nil {
			return
		}
	}
}

// parseDecimal parses 1*DIGIT into a non-negative int64; "+5", "-1", "0x5" and overflow fail.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func (fi *fieldInfo) framingError(http10 bool, te, unsupported *Error) error {
	if fi.clBad {
		return errContentLength
	}
	if !fi.teSeen {
		return nil
	}
	if http10 {
		return errTEHTTP10
	}
	if fi.clSeen {
		return errCLAndTE
	}
	switch {
	case fi.teBad:
		return te
	case fi.teChunked > 0 && !fi.teLast, fi.teChunked > 1:
		return errTEChunkedNotLast
	case fi.teOther:
		return unsupported
	case fi.teChunked == 0:
		return te
	}
	return nil
}

// requestSemantics applies RFC 9112 §3.2-§3.3, §6 and §9.3 once all fields are known.
func requestSemantics(h *header.Map, rh *RequestHead, fi *fieldInfo, target []byte) error {
	http11 := rh.Minor == 1
	if err := fi.framingError(!http11, errTEInvalid, errTEUnsupported); err != nil {
		return err
	}
	switch {
	case fi.teSeen:
		rh.Framing = Framing{Kind: Chunked}
	case fi.clSeen:
		rh.Framing = Framing{Kind: Length, Length: fi.cl}
	}

	if fi.hosts > 1 {
		return errMultiHost
	}
	if fi.hosts == 0 && http11 {
		return errNoHost
	}
	if fi.hosts == 1 {
		if !validAuthority(fi.host, false) {
			return errBadHost
		}
		h.Authority = str(fi.host)
	}
	if err := setTarget(h, target); err != nil {
		return err
	}

	if http11 {
		rh.KeepAlive = !fi.close
		rh.Expect100 = fi.expect100
		if fi.upgradeOK && fi.upgrade != nil {
			rh.Upgrade = str(fi.upgrade)
		}
	} else {
		rh.KeepAlive = fi.keepAlive && !fi.close
	}
	return nil
}

// setTarget checks the request-target's form against the method (RFC 9112 §3.2) and fills
// Path, and for absolute- and authority-form the Authority.
func setTarget(h *header.Map, t []byte) error {
	connect := h.Method == "CONNECT"
	switch {
	case connect:
		// authority-form only: host ":" port.
		if !validAuthority(t, true) {
			return errTarget
		}
		h.Authority = str(t)
		return nil
	case t[0] == '/':
		h.Path = str(t)
		return nil
	case len(t) == 1 && t[0] == '*':
		if h.Method != "OPTIONS" {
			return errTarget
		}
		h.Path = "*"
		return nil
	}
	return setAbsoluteTarget(h, t)
}

// setAbsoluteTarget handles absolute-form. RFC 9112 §3.2.2: the authority of the target
// replaces any Host field, which the caller has already checked for presence and syntax.
func setAbsoluteTarget(h *header.Map, t []byte) error {
	c := bytes.IndexByte(t, ':')
	if c <= 0 || len(t) < c+3 || t[c+1] != '/' || t[c+2] != '/' {
		return errTarget
	}
	switch {
	case equalFoldBytes(t[:c], "http"):
		h.Scheme = "http"
	case equalFoldBytes(t[:c], "https"):
		h.Scheme = "https"
	default:
		return errTarget
	}
	rest := t[c+3:]
	e := 0
	for e < len(rest) && rest[e] != '/' && rest[e] != '?' {
		e++
	}
	auth, path := rest[:e], rest[e:]
	// RFC 9110 §4.2.1: an http URI with an empty host is invalid; userinfo is refused since it
	// would hide the real host from anything comparing the Authority.
	if len(auth) == 0 || !validAuthority(auth, false) {
		return errTarget
	}
	h.Authority = str(auth)
	switch {
	case len(path) == 0:
		h.Path = "/"
	case path[0] == '?':
		h.Path = "/" + string(path) // rare enough to pay for the copy
	default:
		h.Path = str(path)
	}
	return nil
}

// validAuthority checks host [":" port] (RFC 9110 §7.2, RFC 3986 §3.2.2). The empty authority
// is valid in a Host field but not where CONNECT needs host and port.
func validAuthority(a []byte, needPort bool) bool {
	var host, port []byte
	hasPort := false
	if len(a) > 0 && a[0] == '[' {
		e := bytes.IndexByte(a, ']')
		if e < 2 {
			return false
		}
		for _, c := range a[1:e] {
			if !isIPLiteral[c] {
				return false
			}
		}
		host = a[:e+1]
		if rest := a[e+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return false
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host = a
		if c := bytes.LastIndexByte(a, ':'); c >= 0 {
			host, port, hasPort = a[:c], a[c+1:], true
		}
		for _, c := range host {
			if !isRegName[c] {
				return false
			}
		}
	}
	if needPort && (!hasPort || len(host) == 0 || len(port) == 0) {
		return false
	}
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ParseResponseHead parses a status line and response head at the start of buf into h and rh.
// method is the request's method, which decides whether the response has a body (RFC 9112
// §6.3). Errors are *Error with Status 502: a malformed response is the gateway's problem to
// report downstream.
func ParseResponseHead(buf []byte, h *header.Map, rh *ResponseHead, method string, lim Limits) (int, error) {
	n, err := parseResponseHead(buf, h, rh, method, lim)
	if err != nil && err != ErrNeedMore {
		return 0, upstreamError(err)
	}
	return n, err
}

func parseResponseHead(buf []byte, h *header.Map, rh *ResponseHead, method string, lim Limits) (int, error) {
	lim = lim.withDefaults()
	h.Reset()
	*rh = ResponseHead{}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > lim.MaxHeaderBytes {
			return 0, errHeadTooLarge
		}
		return 0, ErrNeedMore
	}
	if i == 0 || buf[i-1] != '\r' {
		return 0, errBareLF
	}
	line := buf[:i-1]
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]; the SP before an empty
	// reason is commonly omitted and harmless to accept.
	if len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, errVersion
	}
	major, minor, err := parseVersion(line[:8])
	if err != nil {
		return 0, err
	}
	if major != 1 || minor > 1 {
		return 0, errVersionNotSupp
	}
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, errVersion
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, errVersion
	}
	var reason []byte
	if len(line) > 12 {
		reason = line[13:]
		for _, c := range reason {
			if !isFieldValue[c] {
				return 0, errFieldValue
			}
		}
	}
	rh.Major, rh.Minor, rh.Status, rh.Reason = major, minor, status, str(reason)
	h.Status = status

	var fi fieldInfo
	n, err := parseFields(buf, i+1, h, &fi, lim, false)
	if err != nil {
		return 0, err
	}
	if fi.hosts > 0 {
		// Host means nothing in a response; keep it as an ordinary field.
		h.Add("host", str(fi.host))
	}
	if err := responseSemantics(rh, &fi, method); err != nil {
		return 0, err
	}
	return n, nil
}

func responseSemantics(rh *ResponseHead, fi *fieldInfo, method string) error {
	http11 := rh.Minor == 1
	if http11 {
		rh.KeepAlive = !fi.close
	} else {
		rh.KeepAlive = fi.keepAlive && !fi.close
	}
	s := rh.Status
	if method == "HEAD" || s < 200 || s == 204 || s == 304 {
		// Framing fields describe the entity, not this message; but a malformed one still
		// betrays a confused server.
		if fi.clBad {
			return errContentLength
		}
		if s == 101 || (method == "CONNECT" && s < 300) {
			rh.KeepAlive = false
		}
		return nil
	}
	if method == "CONNECT" && s < 300 {
		// A tunnel: the bytes that follow belong to it, whatever the fields say.
		rh.KeepAlive = false
		return nil
	}
	if err := fi.framingError(!http11, errTEInvalid, errTEUnsupported); err != nil {
		return err
	}
	switch {
	case fi.teSeen:
		rh.Framing = Framing{Kind: Chunked}
	case fi.clSeen:
		rh.Framing = Framing{Kind: Length, Length: fi.cl}
	default:
		rh.Framing = Framing{Kind: UntilClose}
		rh.KeepAlive = false
	}
	return nil
}
