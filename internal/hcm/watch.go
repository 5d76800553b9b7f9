package hcm

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"
)

// An HTTP/1.1 connection's goroutine runs its stream's filters, so while a filter blocks (an
// ext_authz call, a JWKS fetch) nothing reads the connection and a client that goes away goes
// unnoticed: the filter would wait out its call for nobody. Once the request has been read
// whole and someone waits on the stream's context, a watcher waits for the connection to
// become readable and peeks at it (MSG_PEEK: nothing is consumed, so a pipelined request
// stays where the codec will read it). End of stream or an error means the client left, and
// the stream's context is cancelled; data means the client is still there, and the watch
// ends. It stops when the response is done, by moving the read deadline.

// watchable marks the point from which s's connection may be watched: its request has been
// read whole and the codec holds nothing more (a pipelined request shows the client is there).
func (hc *h1conn) watchable(s *stream) {
	if hc.sc.Buffered() > 0 || s.Request.Has("upgrade") || s.Request.Method == "CONNECT" {
		return // an upgraded connection is the tunnel's to read
	}
	s.ctx.watchPeer(hc)
}

// watch implements peerWatcher.
func (hc *h1conn) watch(c *streamCtx) {
	rc := rawConn(hc.nc)
	if rc == nil {
		return
	}
	hc.watching.Store(true)
	hc.watchers.Add(1)
	go func() {
		defer hc.watchers.Done()
		if peerGone(rc) {
			hc.peerGone.Store(true)
			c.cancel()
		}
	}()
}

// stopWatch ends a watch of s's connection, if one runs, before the connection is read
// again, and reports whether it saw the client leave.
func (hc *h1conn) stopWatch(s *stream) bool {
	s.ctx.watchPeer(nil)
	if !hc.watching.Swap(false) {
		return false
	}
	hc.nc.SetReadDeadline(time.Now()) // wakes the watcher's wait
	hc.watchers.Wait()
	hc.dlKnown = false // the deadline armRead remembers is gone
	return hc.peerGone.Swap(false)
}

// rawConn returns the socket under nc (under TLS, the TCP connection: a TLS record arriving
// counts as the client being there), or nil when there is none to peek at.
func rawConn(nc net.Conn) syscall.RawConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
