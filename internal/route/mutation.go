package route

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Vars supplies the stream facts header values may refer to with Envoy's command operators.
// Implementations should not allocate for values they already hold; only headers whose
// configured value contains an operator call them.
type Vars interface {
	// DownstreamRemoteAddress is the client's "ip:port" (%DOWNSTREAM_REMOTE_ADDRESS%);
	// %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% is derived from it.
	DownstreamRemoteAddress() string
	// DownstreamLocalAddress is the "ip:port" the client connected to.
	DownstreamLocalAddress() string
	// UpstreamRemoteAddress is the chosen endpoint's "ip:port", "" before one is chosen.
	UpstreamRemoteAddress() string
	// Protocol is the downstream protocol: "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3".
	Protocol() string
	// StartTime is when the stream's first byte arrived.
	StartTime() time.Time
	// RequestHeaders are the request's headers, read by %REQ(x)% in response headers.
	RequestHeaders() *header.Map
}

// Mutation is a compiled model.HeaderMutation: header removals and additions for requests and
// responses. Within one Mutation, removals go first; then every addition is decided (and its
// value formatted) against the headers as they stand, then overwrites are applied, then
// appends, as Envoy's HeaderParser does.
type Mutation struct {
	reqRemove  []string
	reqAdd     []headerAdd
	respRemove []string
	respAdd    []headerAdd
}

type headerAdd struct {
	name      string
	value     string  // used when format is nil
	format    *format // nil for a literal value
	action    model.AppendAction
	keepEmpty bool
}

func (a *headerAdd) overwrite() bool {
	return a.action == model.OverwriteIfExistsOrAdd || a.action == model.OverwriteIfExists
}

// compileMutation returns nil for an empty mutation so that callers skip it for free.
func compileMutation(hm *model.HeaderMutation) (*Mutation, error) {
	if len(hm.RequestAdd) == 0 && len(hm.RequestRemove) == 0 &&
		len(hm.ResponseAdd) == 0 && len(hm.ResponseRemove) == 0 {
		return nil, nil
	}
	m := &Mutation{}
	var err error
	if m.reqAdd, err = compileAdds(hm.RequestAdd, "request_headers_to_add"); err != nil {
		return nil, err
	}
	if m.respAdd, err = compileAdds(hm.ResponseAdd, "response_headers_to_add"); err != nil {
		return nil, err
	}
	for _, n := range hm.RequestRemove {
		m.reqRemove = append(m.reqRemove, lowerASCII(n))
	}
	for _, n := range hm.ResponseRemove {
		m.respRemove = append(m.respRemove, lowerASCII(n))
	}
	return m, nil
}

func compileAdds(opts []model.HeaderValueOption, field string) ([]headerAdd, error) {
	var adds []headerAdd
	for i := range opts {
		o := &opts[i]
		if o.Name == "" {
			return nil, fmt.Errorf("%s[%d]: empty header name", field, i)
		}
		if o.Action > model.OverwriteIfExists {
			return nil, fmt.Errorf("%s[%d] %q: unknown append_action %d", field, i, o.Name, o.Action)
		}
		a := headerAdd{name: lowerASCII(o.Name), action: o.Action, keepEmpty: o.KeepEmptyValue}
		f, err := parseFormat(o.Value)
		if err != nil {
			return nil, fmt.Errorf("%s[%d] %q: %w", field, i, o.Name, err)
		}
		if lit, ok := f.literal(); ok {
			if lit == "" && !a.keepEmpty {
				continue // Envoy never adds an empty value unless asked to
			}
			a.value = lit
		} else {
			a.format = f
		}
		adds = append(adds, a)
	}
	return adds, nil
}

// Empty reports whether m does nothing.
func (m *Mutation) Empty() bool {
	return m == nil || len(m.reqAdd)+len(m.reqRemove)+len(m.respAdd)+len(m.respRemove) == 0
}

// ApplyRequest applies the request part of m to h. %REQ(x)% reads h as it stood before m's
// additions.
func (m *Mutation) ApplyRequest(h *header.Map, v Vars) {
	if m == nil {
		return
	}
	apply(h, m.reqRemove, m.reqAdd, v, h, nil)
}

// ApplyResponse applies the response part of m to h. %REQ(x)% reads v.RequestHeaders() and
// %RESP(x)% reads h.
func (m *Mutation) ApplyResponse(h *header.Map, v Vars) {
	if m == nil {
		return
	}
	var req *header.Map
	if v != nil && len(m.respAdd) > 0 {
		req = v.RequestHeaders()
	}
	apply(h, m.respRemove, m.respAdd, v, req, h)
}

// inlineAdds is how many additions one Mutation decides on the stack.
const inlineAdds = 32

func apply(h *header.Map, removes []string, adds []headerAdd, v Vars, req, resp *header.Map) {
	for _, name := range removes {
		h.Del(name)
	}
	if len(adds) == 0 {
		return
	}
	var (
		fireBuf [inlineAdds]bool
		valBuf  [inlineAdds]string
		fire    = fireBuf[:0]
		vals    = valBuf[:0]
	)
	if len(adds) > inlineAdds {
		fire = make([]bool, 0, len(adds))
		vals = make([]string, 0, len(adds))
	}
	for i := range adds {
		a := &adds[i]
		val := a.value
		if a.format != nil {
			val = a.format.render(v, req, resp)
		}
		ok := val != "" || a.keepEmpty
		if ok {
			switch a.action {
			case model.AddIfAbsent:
				ok = !h.Has(a.name)
			case model.OverwriteIfExists:
				ok = h.Has(a.name)
			}
		}
		fire = append(fire, ok)
		vals = append(vals, val)
	}
	for i := range adds {
		if fire[i] && adds[i].overwrite() {
			h.Set(adds[i].name, vals[i])
		}
	}
	for i := range adds {
		if fire[i] && !adds[i].overwrite() {
			h.Add(adds[i].name, vals[i])
		}
	}
}

// format is a header value with command operators, split into literal text and variables.
type format struct {
	parts []formatPart
}

type varKind uint8

const (
	varLiteral varKind = iota
	varDownstreamRemote
	varDownstreamRemoteNoPort
	varDownstreamLocal
	varProtocol
	varUpstreamRemote
	varHostname
	varStartTime
	varReq
	varResp
)

type formatPart struct {
	kind    varKind
	text    string // literal text, or the first header name for REQ/RESP
	alt     string // REQ(a?b): the header read when text is absent
	maxLen  int    // REQ(x):N truncation, 0 for none
	layout  string // START_TIME layout (Go form)
	unixSec bool   // START_TIME(%s)
}

func (f *format) literal() (string, bool) {
	switch len(f.parts) {
	case 0:
		return "", true
	case 1:
		if f.parts[0].kind == varLiteral {
			return f.parts[0].text, true
		}
	}
	return "", false
}

// parseFormat splits an Envoy header value into literal text and the operators Nuncio
// supports; "%%" is a literal '%'. Unknown operators are errors so that a typo is a NACK rather
// than a header that silently never appears.
func parseFormat(s string) (*format, error) {
	f := &format{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{kind: varLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for s != "" {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		s = s[i+1:]
		if strings.HasPrefix(s, "%") {
			lit.WriteByte('%')
			s = s[1:]
			continue
		}
		j := operatorLen(s)
		if j < 0 {
			return nil, errors.New("unterminated % operator")
		}
		op := s[:j]
		s = s[j+1:]
		p, err := parseOperator(op)
		if err != nil {
			return nil, err
		}
		flush()
		f.parts = append(f.parts, p)
	}
	flush()
	return f, nil
}

// operatorLen returns the length of the operator at the start of s (after its opening '%'),
// up to its closing '%', or -1. Like Envoy's, the grammar is NAME, an optional (ARG) that may
// itself hold '%' (START_TIME formats do), and an optional :LENGTH.
func operatorLen(s string) int {
	i := 0
	for i < len(s) && ('A' <= s[i] && s[i] <= 'Z' || '0' <= s[i] && s[i] <= '9' || s[i] == '_') {
		i++
	}
	if i < len(s) && s[i] == '(' {
		k := strings.IndexByte(s[i:], ')')
		if k < 0 {
			return -1
		}
		i += k + 1
	}
	k := strings.IndexByte(s[i:], '%')
	if k < 0 {
		return -1
	}
	return i + k
}

func parseOperator(op string) (formatPart, error) {
	switch op {
	case "DOWNSTREAM_REMOTE_ADDRESS":
		return formatPart{kind: varDownstreamRemote}, nil
	case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
		return formatPart{kind: varDownstreamRemoteNoPort}, nil
	case "DOWNSTREAM_LOCAL_ADDRESS":
		return formatPart{kind: varDownstreamLocal}, nil
	case "PROTOCOL":
		return formatPart{kind: varProtocol}, nil
	case "UPSTREAM_REMOTE_ADDRESS":
		return formatPart{kind: varUpstreamRemote}, nil
	case "HOSTNAME":
		// The host name never changes, so it is resolved here and kept as literal text.
		return formatPart{kind: varLiteral, text: hostname()}, nil
	case "START_TIME":
		return formatPart{kind: varStartTime, layout: "2006-01-02T15:04:05.000Z"}, nil
	}
	name, arg, ok := strings.Cut(op, "(")
	if !ok {
		return formatPart{}, fmt.Errorf("unsupported operator %%%s%%", op)
	}
	arg, rest, ok := strings.Cut(arg, ")")
	if !ok {
		return formatPart{}, fmt.Errorf("operator %%%s%%: missing ')'", op)
	}
	switch name {
	case "START_TIME":
		if rest != "" {
			return formatPart{}, fmt.Errorf("operator %%%s%%: unexpected %q", op, rest)
		}
		if arg == "%s" {
			return formatPart{kind: varStartTime, unixSec: true}, nil
		}
		layout, err := strftimeLayout(arg)
		if err != nil {
			return formatPart{}, fmt.Errorf("operator %%%s%%: %w", op, err)
		}
		return formatPart{kind: varStartTime, layout: layout}, nil
	case "REQ", "RESP":
		p := formatPart{kind: varReq}
		if name == "RESP" {
			p.kind = varResp
		}
		p.text, p.alt, _ = strings.Cut(arg, "?")
		p.text, p.alt = lowerASCII(p.text), lowerASCII(p.alt)
		if p.text == "" {
			return formatPart{}, fmt.Errorf("operator %%%s%%: empty header name", op)
		}
		if rest != "" {
			if rest[0] != ':' {
				return formatPart{}, fmt.Errorf("operator %%%s%%: unexpected %q", op, rest)
			}
			n, err := strconv.Atoi(rest[1:])
			if err != nil || n <= 0 {
				return formatPart{}, fmt.Errorf("operator %%%s%%: bad length %q", op, rest[1:])
			}
			p.maxLen = n
		}
		return p, nil
	}
	return formatPart{}, fmt.Errorf("unsupported operator %%%s%%", op)
}

// render formats the value. A value that is one variable costs nothing beyond the variable's
// own lookup; several parts are concatenated into a new string.
func (f *format) render(v Vars, req, resp *header.Map) string {
	if len(f.parts) == 1 {
		return f.parts[0].value(v, req, resp)
	}
	var b strings.Builder
	for i := range f.parts {
		b.WriteString(f.parts[i].value(v, req, resp))
	}
	return b.String()
}

func (p *formatPart) value(v Vars, req, resp *header.Map) string {
	switch p.kind {
	case varLiteral:
		return p.text
	case varReq:
		return p.header(req)
	case varResp:
		return p.header(resp)
	}
	if v == nil {
		return ""
	}
	switch p.kind {
	case varDownstreamRemote:
		return v.DownstreamRemoteAddress()
	case varDownstreamRemoteNoPort:
		return withoutPort(v.DownstreamRemoteAddress())
	case varDownstreamLocal:
		return v.DownstreamLocalAddress()
	case varProtocol:
		return v.Protocol()
	case varUpstreamRemote:
		return v.UpstreamRemoteAddress()
	case varStartTime:
		t := v.StartTime()
		if t.IsZero() {
			return ""
		}
		if p.unixSec {
			return strconv.FormatInt(t.Unix(), 10)
		}
		return t.UTC().Format(p.layout)
	}
	return ""
}

func (p *formatPart) header(h *header.Map) string {
	if h == nil {
		return ""
	}
	val, ok := h.Get(p.text)
	if !ok && p.alt != "" {
		val = h.Value(p.alt)
	}
	if p.maxLen > 0 && len(val) > p.maxLen {
		val = val[:p.maxLen]
	}
	return val
}

// withoutPort strips the port from "ip:port" or "[v6]:port", leaving a v6 address unbracketed
// as Envoy prints it.
func withoutPort(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return "-"
	}
	return h
})

// strftimeLayout converts the strftime subset Envoy configurations commonly use into a Go time
// layout.
func strftimeLayout(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			// Go layouts treat digits and some words as directives; keep digits out of them by
			// refusing them rather than mis-rendering.
			if c >= '0' && c <= '9' {
				return "", fmt.Errorf("digits in a START_TIME format are not supported")
			}
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("trailing % in START_TIME format")
		}
		switch s[i] {
		case 'Y':
			b.WriteString("2006")
		case 'm':
			b.WriteString("01")
		case 'd':
			b.WriteString("02")
		case 'H':
			b.WriteString("15")
		case 'M':
			b.WriteString("04")
		case 'S':
			b.WriteString("05")
		case 'y':
			b.WriteString("06")
		case 'b':
			b.WriteString("Jan")
		case 'a':
			b.WriteString("Mon")
		case 'z':
			b.WriteString("-0700")
		case 'Z':
			b.WriteString("MST")
		case 'T':
			b.WriteString("15:04:05")
		case 'F':
			b.WriteString("2006-01-02")
		case '%':
			b.WriteByte('%')
		case 'E':
			// %E3S, %E6S, %E9S: seconds with that many fractional digits.
			if i+2 < len(s) && s[i+2] == 'S' && (s[i+1] == '3' || s[i+1] == '6' || s[i+1] == '9') {
				b.WriteString("05." + strings.Repeat("0", int(s[i+1]-'0')))
				i += 2
				continue
			}
			return "", fmt.Errorf("unsupported START_TIME directive %%E%s", s[i+1:])
		default:
			return "", fmt.Errorf("unsupported START_TIME directive %%%c", s[i])
		}
	}
	return b.String(), nil
}
