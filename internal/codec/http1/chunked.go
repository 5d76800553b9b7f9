package http1

import (
	"bytes"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// Chunk-line bounds. Extensions have no use we support, so they only need to be tolerated,
// not stored: one line may carry at most maxChunkLine bytes and a whole body at most
// maxChunkExtTotal bytes of them, which stops a peer from making the gateway parse megabytes of
// extensions to move a few bytes of data (the abuse behind CVE-2023-39326).
const (
	maxChunkLine     = 4096
	maxChunkExtTotal = 16 << 10
)

type chunkState uint8

const (
	csSize     chunkState = iota // expecting chunk-size [ chunk-ext ] CRLF
	csData                       // inside chunk-data, remain bytes left
	csDataCRLF                   // expecting the CRLF after chunk-data
	csTrailer                    // expecting the trailer section
	csDone
)

// chunkedDecoder decodes the chunked transfer coding (RFC 9112 §7.1) from whatever part of the
// stream the caller has buffered. It never copies: data aliases the input.
type chunkedDecoder struct {
	state    chunkState
	remain   int64
	extBytes int
	lim      Limits
	trailers *header.Map
}

func (d *chunkedDecoder) reset(lim Limits, trailers *header.Map) {
	*d = chunkedDecoder{lim: lim.withDefaults(), trailers: trailers}
	trailers.Reset()
}

func (d *chunkedDecoder) done() bool { return d.state == csDone }

// decode consumes from p until it has data to return, reaches the end of the body, or needs
// more input (ErrNeedMore; n may still be > 0 for the lines it did consume). data aliases p.
func (d *chunkedDecoder) decode(p []byte) (n int, data []byte, err error) {
	for {
		switch d.state {
		case csSize:
			i := bytes.IndexByte(p[n:], '\n')
			if i < 0 {
				if len(p)-n > maxChunkLine {
					return n, nil, errChunkExtTooLarge
				}
				return n, nil, ErrNeedMore
			}
			if i == 0 || p[n+i-1] != '\r' {
				return n, nil, errBareLF
			}
			if i > maxChunkLine {
				return n, nil, errChunkExtTooLarge
			}
			size, ext, err := parseChunkLine(p[n : n+i-1])
			if err != nil {
				return n, nil, err
			}
			if d.extBytes += ext; d.extBytes > maxChunkExtTotal {
				return n, nil, errChunkExtTooLarge
			}
			n += i + 1
			if size == 0 {
				d.state = csTrailer
			} else {
				d.state, d.remain = csData, size
			}
		case csData:
			avail := int64(len(p) - n)
			if avail == 0 {
				return n, nil, ErrNeedMore
			}
			take := min(avail, d.remain)
			data = p[n : n+int(take)]
			n += int(take)
			if d.remain -= take; d.remain == 0 {
				d.state = csDataCRLF
			}
			return n, data, nil
		case csDataCRLF:
			if len(p)-n < 2 {
				if len(p) > n && p[n] != '\r' {
					return n, nil, errChunkData
				}
				return n, nil, ErrNeedMore
			}
			if p[n] != '\r' || p[n+1] != '\n' {
				return n, nil, errChunkData
			}
			n += 2
			d.state = csSize
		case csTrailer:
			// The common empty trailer section needs no parsing at all.
			if len(p)-n >= 2 && p[n] == '\r' && p[n+1] == '\n' {
				d.state = csDone
				return n + 2, nil, nil
			}
			end, err := parseFields(p[n:], 0, d.trailers, nil, d.lim, true)
			if err != nil {
				if err == ErrNeedMore {
					d.trailers.Reset()
				}
				return n, nil, err
			}
			d.state = csDone
			return n + end, nil, nil
		case csDone:
			return n, nil, nil
		}
	}
}

// parseChunkLine parses chunk-size [ chunk-ext ] (RFC 9112 §7.1.1) and returns the size and
// the number of extension bytes. Extensions are checked against the grammar and dropped:
//
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
func parseChunkLine(line []byte) (size int64, ext int, err error) {
	i := 0
	for ; i < len(line); i++ {
		v := unhex(line[i])
		if v < 0 {
			break
		}
		if size >= 1<<59 { // the next shift would overflow int64
			return 0, 0, errChunkSize
		}
		size = size<<4 | int64(v)
	}
	if i == 0 {
		return 0, 0, errChunkSize
	}
	rest := line[i:]
	if len(rest) == 0 {
		return size, 0, nil
	}
	if !validChunkExt(rest) {
		if len(rest) > 0 && !isOWS(rest[0]) && rest[0] != ';' {
			return 0, 0, errChunkSize
		}
		return 0, 0, errChunkExt
	}
	return size, len(rest), nil
}

func validChunkExt(b []byte) bool {
	skipBWS := func() {
		for len(b) > 0 && isOWS(b[0]) {
			b = b[1:]
		}
	}
	token := func() bool {
		j := 0
		for j < len(b) && isToken[b[j]] {
			j++
		}
		b = b[j:]
		return j > 0
	}
	// BWS is allowed only before ";" and around "=": "5 " and "5;a " are refused, since a
	// peer that tolerates them and one that does not disagree about where the size ends.
	for len(b) > 0 {
		skipBWS()
		if len(b) == 0 || b[0] != ';' {
			return false
		}
		b = b[1:]
		skipBWS()
		if !token() {
			return false
		}
		skipBWS()
		if len(b) == 0 || b[0] != '=' {
			continue
		}
		b = b[1:]
		skipBWS()
		if len(b) > 0 && b[0] == '"' {
			if b = quotedStringTail(b[1:]); b == nil {
				return false
			}
		} else if !token() {
			return false
		}
	}
	return true
}

// quotedStringTail returns what follows the closing quote of a quoted-string whose opening
// quote has been consumed (RFC 9110 §5.6.4), or nil if it is malformed.
func quotedStringTail(b []byte) []byte {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[i+1:]
		case c == '\\':
			if i+1 == len(b) || !isFieldValue[b[i+1]] {
				return nil
			}
			i++
		case !isFieldValue[c]:
			return nil
		}
	}
	return nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
