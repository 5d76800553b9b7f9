package tracing

import (
	"encoding/hex"
	"strings"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// spanContext is a trace context read from, or written to, request headers.
type spanContext struct {
	traceID [16]byte
	spanID  [8]byte
	// sampled is the upstream's sampling decision when decided is set.
	sampled, decided bool
	valid            bool // traceID and spanID were present and well-formed
}

// propagation records which header styles the request used, so the context goes upstream in
// the same styles (plus W3C, always).
type propagation uint8

const (
	propB3Single propagation = 1 << iota
	propB3Multi
)

// extract reads the parent context: traceparent first, then b3, then x-b3-*.
func extract(h *header.Map) (spanContext, propagation) {
	var prop propagation
	if _, ok := h.Get("b3"); ok {
		prop |= propB3Single
	}
	if _, ok := h.Get("x-b3-traceid"); ok {
		prop |= propB3Multi
	}
	if v, ok := h.Get("traceparent"); ok {
		if sc, ok := parseTraceparent(v); ok {
			return sc, prop
		}
	}
	if v, ok := h.Get("b3"); ok {
		if sc, ok := parseB3Single(v); ok {
			return sc, prop
		}
	}
	return parseB3Multi(h), prop
}

// parseTraceparent reads "version-traceid-parentid-flags" (W3C Trace Context §3.2). Future
// versions may append fields after the flags.
func parseTraceparent(v string) (spanContext, bool) {
	var sc spanContext
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return sc, false
	}
	if len(v) > 55 && (v[:2] == "00" || v[55] != '-') {
		return sc, false
	}
	if v[:2] == "ff" || !isLowerHex(v[:2]) || !isLowerHex(v[3:35]) || !isLowerHex(v[36:52]) || !isLowerHex(v[53:55]) {
		return sc, false
	}
	hex.Decode(sc.traceID[:], []byte(v[3:35]))
	hex.Decode(sc.spanID[:], []byte(v[36:52]))
	if sc.traceID == ([16]byte{}) || sc.spanID == ([8]byte{}) {
		return sc, false
	}
	var flags [1]byte
	hex.Decode(flags[:], []byte(v[53:55]))
	sc.sampled, sc.decided, sc.valid = flags[0]&1 == 1, true, true
	return sc, true
}

// parseB3Single reads "traceid-spanid[-sampled[-parentspanid]]", or a lone sampling state.
func parseB3Single(v string) (spanContext, bool) {
	var sc spanContext
	switch v {
	case "0":
		sc.decided = true
		return sc, true
	case "1", "d":
		sc.sampled, sc.decided = true, true
		return sc, true
	}
	var parts [4]string
	n := 0
	for n < 4 {
		i := strings.IndexByte(v, '-')
		if i < 0 {
			parts[n] = v
			n++
			break
		}
		parts[n], v = v[:i], v[i+1:]
		n++
	}
	if n < 2 || !parseTraceID(parts[0], &sc.traceID) || !parseSpanID(parts[1], &sc.spanID) {
		return spanContext{}, false
	}
	sc.valid = true
	if n >= 3 {
		switch parts[2] {
		case "1", "d":
			sc.sampled, sc.decided = true, true
		case "0":
			sc.decided = true
		default:
			return spanContext{}, false
		}
	}
	return sc, true
}

func parseB3Multi(h *header.Map) spanContext {
	var sc spanContext
	if v, ok := h.Get("x-b3-sampled"); ok {
		switch v {
		case "1", "true":
			sc.sampled, sc.decided = true, true
		case "0", "false":
			sc.decided = true
		}
	}
	if h.Value("x-b3-flags") == "1" { // debug implies sampled
		sc.sampled, sc.decided = true, true
	}
	tid, ok1 := h.Get("x-b3-traceid")
	sid, ok2 := h.Get("x-b3-spanid")
	if ok1 && ok2 && parseTraceID(tid, &sc.traceID) && parseSpanID(sid, &sc.spanID) {
		sc.valid = true
	}
	return sc
}

// parseTraceID accepts B3's 64-bit (16 hex) or 128-bit (32 hex) trace ids; a short one is
// left-padded with zeros as OpenTelemetry does.
func parseTraceID(s string, dst *[16]byte) bool {
	if (len(s) != 16 && len(s) != 32) || !isHex(s) {
		return false
	}
	var id [16]byte
	hex.Decode(id[16-len(s)/2:], []byte(s))
	if id == ([16]byte{}) {
		return false
	}
	*dst = id
	return true
}

func parseSpanID(s string, dst *[8]byte) bool {
	if len(s) != 16 || !isHex(s) {
		return false
	}
	var id [8]byte
	hex.Decode(id[:], []byte(s))
	if id == ([8]byte{}) {
		return false
	}
	*dst = id
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// inject writes the context of span spanID (child of parentID, zero if none) into h.
func inject(h *header.Map, traceID [16]byte, spanID, parentID [8]byte, sampled bool, prop propagation) {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], traceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], spanID[:])
	b[52] = '-'
	b[53] = '0'
	b[54] = '0'
	if sampled {
		b[54] = '1'
	}
	h.Set("traceparent", string(b[:]))
	tid := string(b[3:35])
	sid := string(b[36:52])
	flag := "0"
	if sampled {
		flag = "1"
	}
	if prop&propB3Single != 0 {
		v := tid + "-" + sid + "-" + flag
		if parentID != ([8]byte{}) {
			v += "-" + hex.EncodeToString(parentID[:])
		}
		h.Set("b3", v)
	}
	if prop&propB3Multi != 0 {
		h.Set("x-b3-traceid", tid)
		h.Set("x-b3-spanid", sid)
		if parentID != ([8]byte{}) {
			h.Set("x-b3-parentspanid", hex.EncodeToString(parentID[:]))
		} else {
			h.Del("x-b3-parentspanid")
		}
		h.Set("x-b3-sampled", flag)
		h.Del("x-b3-flags")
	}
}
