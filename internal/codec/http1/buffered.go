package http1

// Buffered reports how many bytes have been read from the connection but not yet consumed:
// after a read timeout it tells a request that started arriving (answer 408) from an idle
// connection (just close).
func (c *ServerConn) Buffered() int { return c.rd.w - c.rd.r }
