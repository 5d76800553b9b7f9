package http2

import (
	"errors"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// headerBlock is the header block being received: HEADERS and its CONTINUATION frames are
// decoded as they arrive, so a block never sits whole in memory, and validated field by field.
type headerBlock struct {
	c         *Conn
	h         *Header
	streamID  uint32
	endStream bool
	kind      headerKind // what the block is expected to be
	bytes     int        // encoded bytes so far
	size      uint32     // decoded size, counted as for SETTINGS_MAX_HEADER_LIST_SIZE
	tooLarge  bool
	err       error // the first reason the block is malformed
	regular   bool  // a regular field was seen (pseudo-headers must come first)
	seen      uint8 // pseudo-headers seen, as bits
}

var (
	errMalformed = errors.New("http2: malformed header block")
)

const (
	seenMethod = 1 << iota
	seenScheme
	seenAuthority
	seenPath
	seenProtocol
	seenStatus
)

func (b *headerBlock) start(id uint32, end bool, kind headerKind, h *Header) {
	h.reset()
	*b = headerBlock{c: b.c, h: h, streamID: id, endStream: end, kind: kind}
	b.c.dec.SetEmitEnabled(true)
}

// emit is the HPACK decoder's callback for each field.
func (b *headerBlock) emit(f hpack.HeaderField) {
	b.size += f.Size()
	if b.size > b.c.cfg.MaxHeaderListSize {
		// Decoding goes on (the HPACK state must stay in step with the peer's) but nothing
		// more is kept: a small block that repeats a large indexed field is an HPACK bomb.
		b.tooLarge = true
		b.c.dec.SetEmitEnabled(false)
		return
	}
	if b.err == nil {
		if !b.add(f) {
			b.err = errMalformed
		}
	}
}

func (b *headerBlock) add(f hpack.HeaderField) bool {
	h := b.h
	if f.IsPseudo() {
		if b.regular || b.kind == kindTrailers {
			return false
		}
		var bit uint8
		switch {
		case b.kind == kindRequest && f.Name == ":method":
			bit, h.Method = seenMethod, f.Value
		case b.kind == kindRequest && f.Name == ":scheme":
			bit, h.Scheme = seenScheme, f.Value
		case b.kind == kindRequest && f.Name == ":authority":
			bit, h.Authority = seenAuthority, f.Value
		case b.kind == kindRequest && f.Name == ":path":
			bit, h.Path = seenPath, f.Value
		case b.kind == kindRequest && f.Name == ":protocol":
			bit, h.Protocol = seenProtocol, f.Value
		case b.kind == kindResponse && f.Name == ":status":
			bit = seenStatus
			if len(f.Value) != 3 {
				return false
			}
			n := 0
			for i := 0; i < 3; i++ {
				if f.Value[i] < '0' || f.Value[i] > '9' {
					return false
				}
				n = n*10 + int(f.Value[i]-'0')
			}
			if n < 100 {
				return false
			}
			h.Status = n
		default:
			return false
		}
		if b.seen&bit != 0 {
			return false // duplicate
		}
		b.seen |= bit
		return true
	}
	b.regular = true
	if !validFieldName(f.Name) || !httpguts.ValidHeaderFieldValue(f.Value) {
		return false
	}
	if connectionSpecific(f.Name) || (f.Name == "te" && f.Value != "trailers") {
		return false
	}
	if f.Name == "content-length" {
		n, ok := parseContentLength(f.Value)
		if !ok || (h.ContentLength >= 0 && h.ContentLength != n) {
			return false
		}
		h.ContentLength = n
	}
	h.Fields = append(h.Fields, f)
	return true
}

// validFieldName accepts lower-case tokens only: RFC 9113 §8.2.1 makes a field name with an
// upper-case letter malformed.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' || !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}

func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// finish checks what only the whole block can show: required pseudo-headers (RFC 9113
// §8.3), CONNECT's forms (RFC 9113 §8.5, RFC 8441 §4), and a content-length that an
// END_STREAM on the HEADERS frame contradicts.
func (b *headerBlock) finish() bool {
	if b.err != nil {
		return false
	}
	h := b.h
	switch b.kind {
	case kindRequest:
		if b.seen&seenMethod == 0 {
			return false
		}
		if h.Method == "CONNECT" && b.seen&seenProtocol == 0 {
			if b.seen&(seenScheme|seenPath) != 0 || h.Authority == "" {
				return false
			}
		} else {
			if b.seen&(seenScheme|seenPath) != seenScheme|seenPath || h.Path == "" {
				return false
			}
			if b.seen&seenProtocol != 0 && (h.Method != "CONNECT" || !b.c.cfg.EnableConnectProtocol || h.Authority == "") {
				return false
			}
		}
		if b.endStream && h.ContentLength > 0 {
			return false
		}
	case kindResponse:
		if b.seen&seenStatus == 0 {
			return false
		}
		if h.Status < 200 && b.endStream {
			return false
		}
	}
	return true
}
