//go:build !unix

package hcm

import "syscall"

// peerGone cannot peek without consuming here; the stream is cancelled only when it ends.
func peerGone(syscall.RawConn) bool { return false }
