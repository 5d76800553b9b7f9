// Package http1 is Nuncio's HTTP/1.1 codec (RFC 9112): the downstream side (ServerConn) reads
// requests and writes responses, the upstream side (ClientConn) writes requests and reads
// responses, and ParseRequestHead / ParseResponseHead are the pure parsers both are built on.
//
// # Strictness
//
// A gateway that parses a message differently from the server behind it lets a client smuggle a
// second request past routing and filters. The parser therefore rejects, rather than repairs,
// everything RFC 9112 lets a recipient reject, and answers with the status the RFC suggests
// (Error.Status):
//
//   - framing: Content-Length together with Transfer-Encoding (400); Content-Length that is not
//     1*DIGIT, overflows, or differs between fields or list members (400; identical repeats are
//     folded as RFC 9110 §8.6 allows); Transfer-Encoding whose final coding is not chunked or that
//     repeats chunked (400), that names any coding besides chunked (501, as Envoy does, since the
//     codec does not decode codings), or that appears in an HTTP/1.0 request (400);
//   - chunked bodies: chunk sizes that are empty, not hex, or overflow; chunk extensions that do
//     not follow the grammar or are oversized; data not followed by CRLF; trailer sections that
//     break the field rules or carry framing or routing fields (400);
//   - lines: bare LF and bare CR anywhere in the head (400), obs-fold (400), whitespace between a
//     field name and its colon (400), field names that are not tokens, values containing CTLs or
//     NUL (400), request lines longer than Limits.MaxRequestLine (414), heads longer than
//     Limits.MaxHeaderBytes or with more than Limits.MaxHeaders fields (431);
//   - request line: a method that is not a token, a request-target that is not origin-form,
//     absolute-form (http/https only), authority-form (CONNECT only) or asterisk-form (OPTIONS
//     only), or exactly one SP between the parts (400); a version other than HTTP/1.0 or HTTP/1.1
//     (505); no Host, several Host fields or an invalid Host in HTTP/1.1 (400).
//
// Only what RFC 9112 explicitly allows is tolerated: empty lines before the request line, OWS
// around field values, a missing reason phrase in a status line.
//
// # Headers
//
// Parsed heads go into a header.Map. The Host field becomes Map.Authority instead of a regular
// field (as :authority in HTTP/2); an absolute-form target sets Authority and Scheme and turns
// the target into origin form in Map.Path, ignoring Host as RFC 9112 §3.2.2 requires. Names are
// lower-cased in place in the read buffer and every string aliases that buffer, so parsing a
// head allocates nothing. Those strings, and trailers, stay valid until the next ReadRequest
// (ReadResponse on the client side), Hijack or Release; code that keeps them longer copies them.
//
// Framing is reported in RequestHead.Framing / ResponseHead.Framing and owned by the codec: when
// writing, Content-Length and Transfer-Encoding fields in the Map are dropped and rewritten from
// the Framing passed in, so a body is always delimited the way the codec actually sends it.
//
// # Buffers
//
// Read and write buffers come from process-wide sync.Pools. A connection holds a read buffer only
// while a message is in flight: once everything read has been consumed, the buffer goes back to
// the pool and the connection waits for readability without one (a RawConn read callback that
// parks in the netpoller for TCP and Unix sockets, a one-byte read otherwise), so an idle
// keep-alive connection costs only its structs. A head that does not fit the small buffer moves
// to a large one before it is parsed; while a body streams, the buffer holding the head is kept
// aside rather than compacted, so header strings stay valid. The write buffer coalesces a head
// and small bodies into one write; large body chunks go out with writev next to it.
//
// Neither connection type is safe for concurrent use, except that reading and writing may
// proceed in different goroutines on a ServerConn (the writer never touches read state).
package http1
