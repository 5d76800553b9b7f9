package accesslog

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// DefaultFormat is Envoy's access log format when none is configured.
const DefaultFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" " +
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% " +
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" " +
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n"

type opcode uint8

const (
	opLiteral opcode = iota
	opStartTime
	opReq
	opResp
	opTrailer
	opProtocol
	opResponseCode
	opResponseCodeDetails
	opResponseFlags
	opBytesReceived
	opBytesSent
	opDuration
	opRequestDuration
	opResponseDuration
	opResponseTxDuration
	opUpstreamHost
	opUpstreamCluster
	opUpstreamLocalAddress
	opDownstreamRemoteAddress
	opDownstreamRemoteAddressWithoutPort
	opDownstreamLocalAddress
	opDownstreamLocalAddressWithoutPort
	opDownstreamDirectRemoteAddress
	opDownstreamDirectRemoteAddressWithoutPort
	opRouteName
	opUpstreamTransportFailureReason
	opRequestedServerName
	opHostname
)

// operators maps the argument-less command operators to their opcodes.
var operators = map[string]opcode{
	"PROTOCOL":                                      opProtocol,
	"RESPONSE_CODE":                                 opResponseCode,
	"RESPONSE_CODE_DETAILS":                         opResponseCodeDetails,
	"RESPONSE_FLAGS":                                opResponseFlags,
	"BYTES_RECEIVED":                                opBytesReceived,
	"BYTES_SENT":                                    opBytesSent,
	"DURATION":                                      opDuration,
	"REQUEST_DURATION":                              opRequestDuration,
	"RESPONSE_DURATION":                             opResponseDuration,
	"RESPONSE_TX_DURATION":                          opResponseTxDuration,
	"UPSTREAM_HOST":                                 opUpstreamHost,
	"UPSTREAM_CLUSTER":                              opUpstreamCluster,
	"UPSTREAM_LOCAL_ADDRESS":                        opUpstreamLocalAddress,
	"DOWNSTREAM_REMOTE_ADDRESS":                     opDownstreamRemoteAddress,
	"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":        opDownstreamRemoteAddressWithoutPort,
	"DOWNSTREAM_LOCAL_ADDRESS":                      opDownstreamLocalAddress,
	"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":         opDownstreamLocalAddressWithoutPort,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS":              opDownstreamDirectRemoteAddress,
	"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT": opDownstreamDirectRemoteAddressWithoutPort,
	"ROUTE_NAME":                                    opRouteName,
	"UPSTREAM_TRANSPORT_FAILURE_REASON":             opUpstreamTransportFailureReason,
	"REQUESTED_SERVER_NAME":                         opRequestedServerName,
	"HOSTNAME":                                      opHostname,
}

// part is one piece of a compiled format: literal text or a command operator.
type part struct {
	op   opcode
	text string // literal text, or the (lower-case) header name
	alt  string // the fallback header of %REQ(X?Y)%
	max  int    // the :Z truncation of header operators; 0 for none
	tf   *timeFormat
}

// Formatter is a compiled Envoy format string. It is immutable and safe for concurrent use.
type Formatter struct {
	parts  []part
	json   []jsonField
	isJSON bool
	// omitEmpty renders an absent value as nothing instead of "-" (omit_empty_values).
	omitEmpty bool
	hostname  string
}

// NewFormatter compiles an Envoy format string; "" means DefaultFormat. With omitEmpty an
// absent value renders as nothing instead of "-".
func NewFormatter(format string, omitEmpty bool) (*Formatter, error) {
	if format == "" {
		format = DefaultFormat
	}
	parts, err := parse(format)
	if err != nil {
		return nil, err
	}
	return &Formatter{parts: parts, omitEmpty: omitEmpty, hostname: hostname()}, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

// parse splits a format string into literal and operator parts.
func parse(format string) ([]part, error) {
	var parts []part
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, part{op: opLiteral, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); {
		c := format[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		p, n, err := parseOperator(format[i:])
		if err != nil {
			return nil, fmt.Errorf("format position %d: %w", i, err)
		}
		flush()
		parts = append(parts, p)
		i += n
	}
	flush()
	return parts, nil
}

// parseOperator reads one %NAME%, %NAME(ARG)% or %NAME(ARG):N% at the start of s and
// returns it with the number of bytes it spans.
func parseOperator(s string) (part, int, error) {
	j := 1
	for j < len(s) && (s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_' || s[j] >= '0' && s[j] <= '9') {
		j++
	}
	name := s[1:j]
	if name == "" {
		return part{}, 0, fmt.Errorf("%q: expected a command operator after %%", clip(s))
	}
	var arg string
	hasArg := false
	if j < len(s) && s[j] == '(' {
		end := strings.IndexByte(s[j:], ')')
		if end < 0 {
			return part{}, 0, fmt.Errorf("%q: unterminated argument", clip(s))
		}
		arg, hasArg = s[j+1:j+end], true
		j += end + 1
	}
	max := 0
	if j < len(s) && s[j] == ':' {
		k := j + 1
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j+1 {
			return part{}, 0, fmt.Errorf("%q: expected a length after ':'", clip(s))
		}
		n, err := strconv.Atoi(s[j+1 : k])
		if err != nil || n <= 0 {
			return part{}, 0, fmt.Errorf("%q: invalid length", clip(s))
		}
		max, j = n, k
	}
	if j >= len(s) || s[j] != '%' {
		return part{}, 0, fmt.Errorf("%q: command operator not terminated by %%", clip(s))
	}
	n := j + 1

	switch name {
	case "REQ", "RESP", "TRAILER":
		if !hasArg || arg == "" {
			return part{}, 0, fmt.Errorf("%%%s%%: a header name is required, as %%%s(X-NAME)%%", name, name)
		}
		main, alt, _ := strings.Cut(arg, "?")
		main, alt = header.Lower(strings.TrimSpace(main)), header.Lower(strings.TrimSpace(alt))
		if main == "" || strings.Contains(alt, "?") {
			return part{}, 0, fmt.Errorf("%%%s(%s)%%: invalid header name", name, arg)
		}
		op := map[string]opcode{"REQ": opReq, "RESP": opResp, "TRAILER": opTrailer}[name]
		return part{op: op, text: main, alt: alt, max: max}, n, nil
	case "START_TIME":
		f := defaultTimeFormat
		if hasArg && arg != "" {
			var err error
			if f, err = compileTime(arg); err != nil {
				return part{}, 0, fmt.Errorf("%%START_TIME(%s)%%: %w", arg, err)
			}
		}
		return part{op: opStartTime, tf: f}, n, nil
	}
	op, ok := operators[name]
	if !ok {
		return part{}, 0, fmt.Errorf("%%%s%% not supported", name)
	}
	if hasArg {
		return part{}, 0, fmt.Errorf("%%%s%% takes no argument", name)
	}
	if max > 0 {
		return part{}, 0, fmt.Errorf("%%%s%% takes no length", name)
	}
	return part{op: op}, n, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// kind is what an operator produced for one stream.
type kind uint8

const (
	kindAbsent kind = iota // no value: "-" in text, null in JSON
	kindString             // str holds the value
	kindNumber             // num holds the value
	kindRaw                // appended by appendRaw; needs no JSON escaping (times, addresses, flags)
)

// env is what every operator of one log line shares.
type env struct {
	s   *httpfilter.Stream
	now time.Time
}

// eval computes a non-raw operator's value.
func (f *Formatter) eval(p *part, e *env) (kind, string, int64) {
	s := e.s
	switch p.op {
	case opReq:
		v, ok := requestHeader(&s.Request, p.text)
		if !ok && p.alt != "" {
			v, ok = requestHeader(&s.Request, p.alt)
		}
		return truncated(v, ok, p.max)
	case opResp:
		v, ok := s.Response.Get(p.text)
		if !ok && p.alt != "" {
			v, ok = s.Response.Get(p.alt)
		}
		return truncated(v, ok, p.max)
	case opTrailer:
		v, ok := s.ResponseTrailers.Get(p.text)
		if !ok && p.alt != "" {
			v, ok = s.ResponseTrailers.Get(p.alt)
		}
		return truncated(v, ok, p.max)
	case opProtocol:
		return str(s.Downstream.Protocol)
	case opResponseCode:
		return kindNumber, "", int64(s.Response.Status)
	case opResponseCodeDetails:
		d := s.Info.ResponseDetails
		if d == "" && s.Info.UpstreamHost != "" && s.Response.Status != 0 {
			d = "via_upstream" // what Envoy records for a response relayed from the upstream
		}
		return str(d)
	case opBytesReceived:
		return kindNumber, "", s.Info.BytesReceived
	case opBytesSent:
		return kindNumber, "", s.Info.BytesSent
	case opDuration:
		return kindNumber, "", millis(e.end().Sub(s.Info.Start))
	case opRequestDuration:
		if t := requestEnd(s); !t.IsZero() {
			return kindNumber, "", millis(t.Sub(s.Info.Start))
		}
	case opResponseDuration:
		if !s.Info.FirstUpstreamRx.IsZero() {
			return kindNumber, "", millis(s.Info.FirstUpstreamRx.Sub(s.Info.Start))
		}
	case opResponseTxDuration:
		if !s.Info.FirstUpstreamRx.IsZero() {
			return kindNumber, "", millis(e.end().Sub(s.Info.FirstUpstreamRx))
		}
	case opUpstreamHost:
		return str(s.Info.UpstreamHost)
	case opUpstreamCluster:
		return str(s.Info.UpstreamCluster)
	case opRouteName:
		return str(s.Info.RouteName)
	case opUpstreamTransportFailureReason:
		return str(s.Info.UpstreamFailure)
	case opRequestedServerName:
		if s.Downstream.TLS != nil {
			return str(s.Downstream.TLS.ServerName)
		}
	case opHostname:
		return str(f.hostname)
	case opStartTime, opResponseFlags, opDownstreamRemoteAddress, opDownstreamRemoteAddressWithoutPort,
		opDownstreamLocalAddress, opDownstreamLocalAddressWithoutPort, opDownstreamDirectRemoteAddress,
		opDownstreamDirectRemoteAddressWithoutPort:
		if f.rawPresent(p, e) {
			return kindRaw, "", 0
		}
	}
	return kindAbsent, "", 0
}

// rawPresent reports whether a raw operator has a value.
func (f *Formatter) rawPresent(p *part, e *env) bool {
	s := e.s
	switch p.op {
	case opStartTime:
		return !s.Info.Start.IsZero()
	case opResponseFlags:
		return true // "-" for none is the value itself, as in Envoy
	case opDownstreamRemoteAddress, opDownstreamRemoteAddressWithoutPort:
		return s.Downstream.RemoteAddr.IsValid()
	case opDownstreamLocalAddress, opDownstreamLocalAddressWithoutPort:
		return s.Downstream.LocalAddr.IsValid()
	case opDownstreamDirectRemoteAddress, opDownstreamDirectRemoteAddressWithoutPort:
		return s.Downstream.DirectRemoteAddr.IsValid()
	}
	return false
}

// appendRaw appends a raw operator's value (rawPresent must be true).
func (f *Formatter) appendRaw(b []byte, p *part, e *env) []byte {
	s := e.s
	switch p.op {
	case opStartTime:
		return p.tf.append(b, s.Info.Start)
	case opResponseFlags:
		return s.Info.ResponseFlags.AppendTo(b)
	case opDownstreamRemoteAddress:
		return appendAddrPort(b, s.Downstream.RemoteAddr)
	case opDownstreamRemoteAddressWithoutPort:
		return s.Downstream.RemoteAddr.Addr().Unmap().AppendTo(b)
	case opDownstreamLocalAddress:
		return appendAddrPort(b, s.Downstream.LocalAddr)
	case opDownstreamLocalAddressWithoutPort:
		return s.Downstream.LocalAddr.Addr().Unmap().AppendTo(b)
	case opDownstreamDirectRemoteAddress:
		return appendAddrPort(b, s.Downstream.DirectRemoteAddr)
	case opDownstreamDirectRemoteAddressWithoutPort:
		return s.Downstream.DirectRemoteAddr.Addr().Unmap().AppendTo(b)
	}
	return b
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	if ap.Addr().Is4In6() {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap.AppendTo(b)
}

// requestHeader is Get with Envoy's alias of Host for :authority (the HTTP/1.1 codec keeps
// Host as the :authority pseudo-header, as Envoy does).
func requestHeader(h *header.Map, name string) (string, bool) {
	if name == "host" {
		name = ":authority"
	}
	return h.Get(name)
}

func truncated(v string, ok bool, max int) (kind, string, int64) {
	if !ok {
		return kindAbsent, "", 0
	}
	if max > 0 && len(v) > max {
		v = v[:max]
	}
	return kindString, v, 0
}

func str(v string) (kind, string, int64) {
	if v == "" {
		return kindAbsent, "", 0
	}
	return kindString, v, 0
}

func millis(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Millisecond)
}

// end is when the stream finished: the last byte sent downstream when known, else now.
func (e *env) end() time.Time {
	if t := e.s.Info.LastDownstreamTx; !t.IsZero() {
		return t
	}
	return e.now
}

// requestEnd is when the request's last byte arrived; a request without a body ends with its
// headers, at the stream's start.
func requestEnd(s *httpfilter.Stream) time.Time {
	if !s.Info.LastDownstreamRx.IsZero() {
		return s.Info.LastDownstreamRx
	}
	if s.Info.BytesReceived == 0 {
		return s.Info.Start
	}
	return time.Time{}
}

// Append formats the line for a finished stream onto b.
func (f *Formatter) Append(b []byte, s *httpfilter.Stream, now time.Time) []byte {
	e := env{s: s, now: now}
	if f.isJSON {
		return f.appendJSON(b, &e)
	}
	return f.appendParts(b, f.parts, &e)
}

func (f *Formatter) appendParts(b []byte, parts []part, e *env) []byte {
	for i := range parts {
		p := &parts[i]
		if p.op == opLiteral {
			b = append(b, p.text...)
			continue
		}
		k, v, n := f.eval(p, e)
		switch k {
		case kindAbsent:
			if !f.omitEmpty {
				b = append(b, '-')
			}
		case kindString:
			b = append(b, v...)
		case kindNumber:
			b = strconv.AppendInt(b, n, 10)
		case kindRaw:
			b = f.appendRaw(b, p, e)
		}
	}
	return b
}
