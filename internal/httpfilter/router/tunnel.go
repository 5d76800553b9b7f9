package router

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// tunnel forwards an accepted Upgrade (WebSocket) over HTTP/1.1 and, when the upstream
// answers 101, splices the two connections until either side closes.
func (f *filter) tunnel(s *httpfilter.Stream, h *header.Map, upgrade string) httpfilter.Status {
	h.Set("connection", "upgrade")
	h.Set("upgrade", upgrade)
	f.beginAttempt(h)
	f.h1x.PrepareTunnel(h)
	if kind, err := f.connect(s); kind != failNone {
		f.report(kind, 0)
		f.failLocally(s, kind, err)
		return httpfilter.Stop
	}
	f.h1x.SetDeadline(time.Time{}) // a tunnel lives as long as its peers want
	if err := f.h1x.WriteHeaders(h, true); err != nil {
		f.upstreamFailed(s, err, false)
		return httpfilter.Stop
	}
	if !f.deadline.IsZero() {
		f.h1x.SetReadDeadline(f.deadline)
	}
	end, err := f.h1x.ReadResponse(&s.Response)
	if err != nil {
		f.upstreamFailed(s, err, true)
		return httpfilter.Stop
	}
	f.h1x.SetDeadline(time.Time{})
	if s.Response.Status != 101 {
		// The upstream refused the upgrade: relay its answer as a normal response.
		f.finishResponseHeaders(s)
		s.EncodeHeaders(end)
		for !end {
			chunk, last, err := f.h1x.ReadBody()
			if err != nil {
				f.upstreamFailed(s, err, true)
				return httpfilter.Stop
			}
			end = last
			s.EncodeBody(chunk, end)
		}
		f.releaseConn(false)
		return httpfilter.Stop
	}
	f.finishResponseHeaders(s)
	s.Response.Set("connection", "upgrade")
	s.Response.Set("upgrade", upgrade)
	s.EncodeHeaders(false)
	down, downBuf, ok := s.Hijack()
	if !ok {
		f.releaseConn(false)
		return httpfilter.Stop
	}
	up, upBuf := f.h1x.Hijack()
	splice(down, downBuf, up, upBuf)
	return httpfilter.Stop
}

// splice copies both ways until both directions are done, then closes both connections.
func splice(a net.Conn, aBuf []byte, b net.Conn, bBuf []byte) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if len(aBuf) > 0 {
			b.Write(aBuf)
		}
		io.Copy(b, a)
		closeWrite(b)
	}()
	if len(bBuf) > 0 {
		a.Write(bBuf)
	}
	io.Copy(a, b)
	closeWrite(a)
	wg.Wait()
	a.Close()
	b.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
