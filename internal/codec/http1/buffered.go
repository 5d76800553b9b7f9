package http1

// Buffered reports how many bytes have been read from the connection but not yet consumed:
// after a read timeout it tells a request that started arriving (answer 408) from an idle
// connection (just close).
func (c *ServerConn) Buffered() int { return c.rd.w - c.rd.r }

// Prime hands the codec bytes already read from the connection (to sniff the protocol), so
// it can keep reading the connection itself: wrapping the connection to replay them would
// hide the socket from the idle wait and cost a read per request.
func (c *ServerConn) Prime(b []byte) {
	rd := &c.rd
	if len(b) == 0 || rd.bufp != nil {
		return
	}
	rd.setBuf(getBuf(smallBufSize))
	rd.w = copy(rd.buf, b)
}
