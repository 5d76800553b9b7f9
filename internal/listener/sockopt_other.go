//go:build !unix

package listener

import "syscall"

// controlReuseAddr does nothing off Unix: on Windows SO_REUSEADDR lets another process steal the
// port, which is not what a restart needs.
func controlReuseAddr(network, address string, rc syscall.RawConn) error { return nil }
