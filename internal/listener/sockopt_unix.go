//go:build unix

package listener

import "syscall"

// controlReuseAddr sets SO_REUSEADDR so that a restarted process can bind while connections of
// its predecessor linger in TIME_WAIT. The Go runtime sets it already on Unix; setting it here
// keeps that guarantee explicit.
func controlReuseAddr(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
