//go:build !unix

package upstream

// peekFD cannot look at the socket on this platform; idle connections are assumed open and
// a request on a closed one fails as it would without the check.
func (c *Conn) peekFD(uintptr) bool {
	c.peek = peekOpen
	return true
}
