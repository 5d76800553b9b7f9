//go:build unix

package upstream

import "syscall"

// peekFD looks at the socket's receive queue without consuming or waiting. Go keeps sockets
// in non-blocking mode, so MSG_PEEK alone returns EAGAIN when there is nothing to read.
func (c *Conn) peekFD(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.buf[:], syscall.MSG_PEEK)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		c.peek = peekOpen
	case err != nil || n == 0:
		c.peek = peekClosed
	default:
		c.peek = peekData
	}
	return true // done; never wait for readiness
}
