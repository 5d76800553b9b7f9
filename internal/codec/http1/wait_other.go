//go:build !unix

package http1

import (
	"net"
	"syscall"
)

func rawConnFor(net.Conn) syscall.RawConn { return nil }

func (rd *reader) rawRead(uintptr) bool { return true }
