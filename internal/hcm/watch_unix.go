//go:build unix

package hcm

import "syscall"

// peerGone waits until rc is readable and reports whether the peer closed or reset it. It
// returns false when data arrived, and when the wait ended otherwise (the read deadline).
func peerGone(rc syscall.RawConn) bool {
	gone := false
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
			return false // not readable yet: wait
		case err != nil:
			gone = true // reset
		case n == 0:
			gone = true // end of stream
		}
		return true
	})
	return err == nil && gone
}
