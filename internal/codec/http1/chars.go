package http1

import (
	"encoding/binary"
	"unsafe"
)

// Byte classes from RFC 9110 §5.6.2 (tchar) and §5.5 (field-vchar), and RFC 3986 for hosts.
var (
	isToken      [256]bool
	isFieldValue [256]bool // field-vchar / SP / HTAB (obs-text allowed)
	isTarget     [256]bool // request-target bytes: VCHAR except '#'
	isRegName    [256]bool // unreserved / pct-encoded / sub-delims
	isIPLiteral  [256]bool // inside "[...]": IPv6 (and a zone id's unreserved bytes)
)

func init() {
	for c := '0'; c <= '9'; c++ {
		isToken[c] = true
		isRegName[c] = true
		isIPLiteral[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		isToken[c], isToken[c-'a'+'A'] = true, true
		isRegName[c], isRegName[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		isToken[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=%" {
		isRegName[c] = true
	}
	for _, c := range "abcdefABCDEF:.%-_~vV" {
		isIPLiteral[c] = true
	}
	for c := 0x21; c < 0x7f; c++ {
		isTarget[c] = c != '#'
	}
	for c := 0x20; c < 0x100; c++ {
		isFieldValue[c] = c != 0x7f
	}
	isFieldValue['\t'] = true
}

// str aliases b without copying; b must not be modified while the string is in use.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// strBytes aliases s for a Write call, which never modifies its argument.
func strBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldBytes compares b with the lower-case ASCII literal lit.
func equalFoldBytes(b []byte, lit string) bool {
	if len(b) != len(lit) {
		return false
	}
	for i := range b {
		if lowerByte(b[i]) != lit[i] {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func trimOWS(b []byte) []byte {
	for len(b) > 0 && isOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// nextListElem splits the first element off a comma-separated list (RFC 9110 §5.6.1), trimmed.
func nextListElem(b []byte) (elem, rest []byte) {
	for i, c := range b {
		if c == ',' {
			return trimOWS(b[:i]), b[i+1:]
		}
	}
	return trimOWS(b), nil
}

func allToken(b []byte) bool {
	for _, c := range b {
		if !isToken[c] {
			return false
		}
	}
	return len(b) > 0
}

const (
	lo8  = 0x0101010101010101
	hi8  = 0x8080808080808080
	del8 = 0x7f7f7f7f7f7f7f7f
	ctl8 = 0x2020202020202020
)

// validFieldValue reports whether every byte of v is field-vchar, SP, HTAB or obs-text. Values
// are most of a head's bytes, so it tests eight at a time and looks closer only at a word that
// holds a byte below 0x20 or a DEL (a tab, or an actual error).
func validFieldValue(v []byte) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		below := (x - ctl8) & ^x & hi8 // a byte < 0x20 (bytes >= 0x80 never match)
		y := x ^ del8
		del := (y - lo8) & ^y & hi8 // a byte == 0x7f
		if below|del != 0 {
			for _, c := range v[i : i+8] {
				if !isFieldValue[c] {
					return false
				}
			}
		}
	}
	for _, c := range v[i:] {
		if !isFieldValue[c] {
			return false
		}
	}
	return true
}
