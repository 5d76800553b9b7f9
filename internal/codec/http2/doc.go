// Package http2 is the gateway's own HTTP/2 codec (RFC 9113), server and client side.
//
// One goroutine per connection reads frames (golang.org/x/net/http2's Framer) and decodes
// header blocks (x/net/http2/hpack); events reach a Handler on that goroutine, without a
// goroutine per stream. Writes from any goroutine queue frames in one connection buffer;
// whoever finds no write in progress writes everything queued in one call, so the frames of
// all ready streams leave together and no goroutine sits between a stream and the socket.
//
// The defences follow Envoy's: premature-reset (rapid reset) detection, bounded header
// blocks (CONTINUATION floods, HPACK bombs), outbound frame limits (PING/SETTINGS floods
// from a peer that does not read), empty-frame floods, PRIORITY floods, a concurrent stream
// limit, a request limit per connection and idle timeouts. README.md lists them with their
// defaults.
package http2
