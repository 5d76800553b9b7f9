package hcm

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// requestError is a request the connection manager refuses before any filter sees it.
type requestError struct {
	status  int
	details string
}

// sanitizeRequest applies Envoy's request handling to freshly decoded headers: hop-by-hop
// removal, header-name policy, path normalisation, X-Forwarded-*, x-request-id. It returns
// a non-zero requestError when the request must be refused.
func (s *stream) sanitizeRequest() requestError {
	h := &s.Request
	m := s.cfg.model

	upgrade := ""
	if headerValueHasToken(h, "connection", "upgrade") {
		upgrade = h.Value("upgrade")
	}
	stripHopByHop(h, true)
	if upgrade != "" {
		// Kept only so the router can decide whether this upgrade is allowed; it re-adds the
		// Connection header itself when it forwards an accepted upgrade.
		h.Set("upgrade", upgrade)
	}

	if m.UnderscoresAction != model.UnderscoresAllow {
		bad := false
		for _, f := range h.Fields() {
			if strings.IndexByte(f.Name, '_') >= 0 {
				bad = true
				break
			}
		}
		if bad {
			if m.UnderscoresAction == model.UnderscoresRejectRequest {
				return requestError{400, "unexpected_underscore"}
			}
			h.DelIf(func(f header.Field) bool { return strings.IndexByte(f.Name, '_') >= 0 })
		}
	}

	if h.Method != "CONNECT" && h.Path != "*" {
		if len(h.Path) == 0 || h.Path[0] != '/' {
			return requestError{400, "invalid_path"}
		}
		if m.NormalizePath || m.MergeSlashes {
			p, ok := normalizePath(s.pathBuf[:0], h.Path, m.NormalizePath, m.MergeSlashes)
			if !ok {
				return requestError{400, "path_normalization_failed"}
			}
			s.pathBuf = p
			h.Path = unsafe.String(unsafe.SliceData(p), len(p))
		}
	}
	if h.Authority == "" {
		return requestError{400, "missing_host_header"}
	}

	s.forwardedFor()
	s.requestID()
	return requestError{}
}

// hopByHop lists the connection-specific fields of RFC 9110 §7.6.1 plus the legacy ones
// proxies have always removed.
var hopByHop = [...]string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "proxy-authenticate"}

// stripHopByHop removes hop-by-hop fields and any field the Connection header names. TE is
// kept when it says only "trailers", which gRPC needs end to end.
func stripHopByHop(h *header.Map, request bool) {
	if h.Has("connection") {
		// Collect first: deleting while Values iterates would skip fields.
		var named [16]string
		n := 0
		h.Values("connection", func(v string) bool {
			for len(v) > 0 && n < len(named) {
				var tok string
				if i := strings.IndexByte(v, ','); i >= 0 {
					tok, v = v[:i], v[i+1:]
				} else {
					tok, v = v, ""
				}
				if tok = trimOWS(tok); tok != "" {
					named[n] = tok
					n++
				}
			}
			return n < len(named)
		})
		for _, tok := range named[:n] {
			if !equalFoldTrim(tok, "te") {
				h.Del(tok)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	if te, ok := h.Get("te"); ok && (!request || !equalFoldTrim(te, "trailers") || h.Count("te") > 1) {
		h.Del("te")
	}
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// forwardedFor implements use_remote_address and xff_num_trusted_hops: it decides the
// client's address, appends the peer to X-Forwarded-For when Nuncio is the edge, and sets
// X-Forwarded-Proto.
func (s *stream) forwardedFor() {
	h := &s.Request
	m := s.cfg.model
	peer := s.Downstream.DirectRemoteAddr
	scheme := "http"
	if s.Downstream.Secure {
		scheme = "https"
	}
	xff, hasXFF := h.Get("x-forwarded-for")
	multi := h.Count("x-forwarded-for") > 1
	if multi || m.UseRemoteAddress {
		// Several XFF lines mean the same as one joined list (RFC 9110 §5.3); at the edge the
		// peer is appended. The list is built in the stream's own buffer, which the header
		// may alias until the stream ends.
		b := s.xffBuf[:0]
		first := true
		h.Values("x-forwarded-for", func(v string) bool {
			if !first {
				b = append(b, ',')
			}
			b = append(b, v...)
			first = false
			return true
		})
		if m.UseRemoteAddress {
			if hasXFF {
				b = append(b, ',')
			}
			b = peer.Addr().Unmap().AppendTo(b)
		}
		s.xffBuf = b
		xff = unsafe.String(unsafe.SliceData(b), len(b))
	}
	if m.UseRemoteAddress {
		h.Set("x-forwarded-for", xff)
		h.Set("x-forwarded-proto", scheme)
	} else if !h.Has("x-forwarded-proto") {
		h.Set("x-forwarded-proto", scheme)
	}
	h.Scheme = scheme

	s.Downstream.RemoteAddr = peer
	if xff == "" {
		return
	}
	// The trusted client address is the (hops+1)'th entry from the right.
	hops := int(m.XFFNumTrustedHops)
	end := len(xff)
	for i := len(xff) - 1; i >= -1; i-- {
		if i >= 0 && xff[i] != ',' {
			continue
		}
		if hops == 0 {
			if a, err := netip.ParseAddr(trimOWS(xff[i+1 : end])); err == nil {
				s.Downstream.RemoteAddr = netip.AddrPortFrom(a, 0)
			}
			return
		}
		hops--
		end = i
	}
}

// requestID sets x-request-id when generate_request_id asks for it: a missing ID is always
// generated; an incoming one is replaced at the edge unless preserve_external_request_id.
func (s *stream) requestID() {
	m := s.cfg.model
	if !m.GenerateRequestID {
		return
	}
	h := &s.Request
	if h.Has("x-request-id") && (!m.UseRemoteAddress || m.PreserveExternalRequestID) {
		return
	}
	writeUUID(&s.idBuf)
	h.Set("x-request-id", unsafe.String(&s.idBuf[0], len(s.idBuf)))
}

// writeUUID writes a random (version 4) UUID. math/rand/v2's generator is seeded from the
// OS and is enough for correlation IDs, which are not secrets.
func writeUUID(b *[36]byte) {
	const hexdig = "0123456789abcdef"
	var raw [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		raw[i] = byte(hi >> (8 * i))
		raw[8+i] = byte(lo >> (8 * i))
	}
	raw[6] = raw[6]&0x0f | 0x40
	raw[8] = raw[8]&0x3f | 0x80
	j := 0
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j] = hexdig[c>>4]
		b[j+1] = hexdig[c&0xf]
		j += 2
	}
}

// normalizePath applies RFC 3986 §6 normalisation to the path part of target (the query is
// kept as is): percent-encodings of unreserved characters are decoded, other encodings are
// upper-cased, dot segments removed, and with mergeSlashes runs of '/' collapsed. It reports
// false for malformed percent-encodings.
func normalizePath(dst []byte, target string, dots, mergeSlashes bool) ([]byte, bool) {
	path, query := target, ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		path, query = target[:i], target[i:]
	}
	// First pass: percent-encoding normalisation into dst.
	start := len(dst)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c != '%' || !dots {
			dst = append(dst, c)
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return dst, false
		}
		v := unhex(path[i+1])<<4 | unhex(path[i+2])
		if isUnreserved(v) {
			dst = append(dst, v)
		} else {
			dst = append(dst, '%', upperHex(path[i+1]), upperHex(path[i+2]))
		}
		i += 2
	}
	seg := dst[start:]
	if dots {
		seg = removeDotSegments(seg)
	}
	if mergeSlashes {
		out := seg[:0]
		for i, c := range seg {
			if c == '/' && i > 0 && seg[i-1] == '/' {
				continue
			}
			out = append(out, c)
		}
		seg = out
	}
	dst = append(dst[:start+len(seg)], query...)
	return dst, true
}

// removeDotSegments is RFC 3986 §5.2.4 done in place on an absolute path.
func removeDotSegments(p []byte) []byte {
	out := p[:0]
	i := 0
	for i < len(p) {
		// p[i] is '/' at the start of each segment.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		segment := p[i+1 : j]
		switch {
		case len(segment) == 1 && segment[0] == '.':
			if j == len(p) {
				out = append(out, '/')
			}
		case len(segment) == 2 && segment[0] == '.' && segment[1] == '.':
			k := len(out) - 1
			for k >= 0 && out[k] != '/' {
				k--
			}
			if k < 0 {
				k = 0
			}
			out = out[:k]
			if j == len(p) {
				out = append(out, '/')
			}
		default:
			out = append(out, p[i:j]...)
		}
		i = j
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return out
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
