//go:build unix

package http1

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawConnFor returns the RawConn to wait on for the socket types whose bytes are the stream
// itself; wrappers such as *tls.Conn transform the bytes and must be read through.
func rawConnFor(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// rawRead is the RawConn.Read callback that fills an idle connection. It takes a buffer only
// once the socket has data: on EAGAIN the buffer goes straight back and returning false parks
// the goroutine in the netpoller with no buffer held. Reading here rather than returning true
// and calling Read afterwards saves a syscall, and avoids guessing at readiness, which after
// a read that filled the buffer may be unknown to the poller.
func (rd *reader) rawRead(fd uintptr) bool {
	size := smallBufSize
	if rd.readLarge {
		size = rd.large
	}
	bp := getBuf(size)
	for {
		n, err := syscall.Read(int(fd), *bp)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			putBuf(bp)
			if testHookParked != nil {
				testHookParked(rd)
			}
			return false
		case err != nil:
			putBuf(bp)
			rd.rawErr = os.NewSyscallError("read", err)
		case n == 0:
			putBuf(bp)
			rd.rawErr = io.EOF
		default:
			rd.setBuf(bp)
			rd.w = n
		}
		return true
	}
}
