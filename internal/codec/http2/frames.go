package http2

import (
	"encoding/binary"
	"io"
	"time"

	"golang.org/x/net/http2"
)

// precheck applies the rules that hold whatever the frame's type: SETTINGS first (RFC 9113
// §3.4), nothing between a HEADERS and its CONTINUATION frames, and the empty-frame limit.
func (c *Conn) precheck(fh http2.FrameHeader) error {
	if !c.sawSettings {
		if fh.Type != http2.FrameSettings || fh.Flags.Has(http2.FlagSettingsAck) {
			return http2.ConnectionError(ErrCodeProtocol)
		}
		c.sawSettings = true
	}
	if c.block.h != nil && fh.Type != http2.FrameContinuation {
		return http2.ConnectionError(ErrCodeProtocol) // the framer checks too
	}
	return c.countEmpty(fh)
}

// readHeaders reads and parses a HEADERS frame's payload (RFC 9113 §6.2).
func (c *Conn) readHeaders(fh http2.FrameHeader) error {
	if fh.StreamID == 0 {
		return http2.ConnectionError(ErrCodeProtocol)
	}
	if int(fh.Length) > c.maxBlock() {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	if cap(c.hbuf) < int(fh.Length) {
		c.hbuf = make([]byte, fh.Length)
	}
	p := c.hbuf[:fh.Length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return err
	}
	pad := 0
	if fh.Flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 {
			return http2.ConnectionError(ErrCodeFrameSize)
		}
		pad, p = int(p[0]), p[1:]
	}
	selfDep := false
	if fh.Flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return http2.ConnectionError(ErrCodeFrameSize)
		}
		selfDep = binary.BigEndian.Uint32(p)&0x7fffffff == fh.StreamID
		p = p[5:]
	}
	if pad > len(p) {
		return http2.ConnectionError(ErrCodeProtocol)
	}
	return c.onHeaders(fh, p[:len(p)-pad], selfDep)
}

// handleFrame processes one inbound frame on the reading goroutine. An error it returns is
// a connection error: the caller sends GOAWAY and closes.
func (c *Conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.ContinuationFrame:
		return c.onContinuation(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		return c.onPing(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onRSTStream(f)
	case *http2.PriorityFrame:
		return c.onPriority(f)
	case *http2.GoAwayFrame:
		return c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(ErrCodeProtocol) // push is never enabled
	}
	return nil // unknown frame types are ignored (RFC 9113 §4.1)
}

// countEmpty limits frames that carry nothing and end nothing: each costs us a frame's
// work for none of the peer's.
func (c *Conn) countEmpty(fh http2.FrameHeader) error {
	empty := false
	switch fh.Type {
	case http2.FrameData:
		empty = fh.Length == 0 && !fh.Flags.Has(http2.FlagDataEndStream)
	case http2.FrameHeaders:
		empty = fh.Length == 0 && !fh.Flags.Has(http2.FlagHeadersEndStream)
	case http2.FrameContinuation:
		empty = fh.Length == 0 && !fh.Flags.Has(http2.FlagContinuationEndHeaders)
	default:
		return nil
	}
	if !empty {
		c.emptyFrames = 0
		return nil
	}
	c.emptyFrames++
	if c.emptyFrames > c.cfg.MaxConsecutiveEmptyFrames {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	return nil
}

// idle reports whether id names a stream the peer could not have opened yet.
func (c *Conn) idleLocked(id uint32) bool {
	if c.server {
		return id > c.maxPeerID || id%2 == 0 && id != 0
	}
	return id%2 == 1 && id >= c.nextID || id%2 == 0
}

// resetLocked resets a stream for a stream error; it returns whether the handler must hear
// of it (OnReset) once c.mu is released.
func (c *Conn) resetLocked(s *Stream, code ErrCode) bool {
	if s.closed {
		return false
	}
	c.queueRSTLocked(s.id, code)
	c.closeStreamLocked(s, code)
	return s.delivered
}

func (c *Conn) notifyReset(s *Stream, code ErrCode) {
	if c.enter(s) {
		s.handler.OnReset(s, code)
		c.leave()
	}
}

// enter starts a callback for s: it serializes callbacks, and refuses those of a stream
// whose handler called Release. leave ends it.
func (c *Conn) enter(s *Stream) bool {
	c.cbMu.Lock()
	if s.released {
		c.cbMu.Unlock()
		return false
	}
	return true
}

func (c *Conn) leave() { c.cbMu.Unlock() }

func (c *Conn) onData(f *http2.DataFrame) error {
	id := f.StreamID
	n := int64(f.Length)
	data := f.Data()
	c.mu.Lock()
	if n > c.recvWindow {
		c.mu.Unlock()
		return http2.ConnectionError(ErrCodeFlowControl)
	}
	c.recvWindow -= n
	s := c.streams[id]
	if s == nil || s.remoteEnded {
		c.consumeConnLocked(n)
		if s == nil && c.idleLocked(id) {
			c.mu.Unlock()
			return http2.ConnectionError(ErrCodeProtocol)
		}
		notify := false
		if s != nil {
			notify = c.resetLocked(s, ErrCodeStreamClosed)
		} else if err := c.queueRSTLocked(id, ErrCodeStreamClosed); err != nil {
			c.mu.Unlock()
			return err
		}
		c.mu.Unlock()
		if notify {
			c.notifyReset(s, ErrCodeStreamClosed)
		}
		return nil
	}
	if n > s.recvWindow {
		c.consumeConnLocked(n)
		notify := c.resetLocked(s, ErrCodeFlowControl)
		c.mu.Unlock()
		if notify {
			c.notifyReset(s, ErrCodeFlowControl)
		}
		return nil
	}
	s.recvWindow -= n
	if pad := n - int64(len(data)); pad > 0 {
		// Padding is consumed on arrival.
		s.unconsumed += pad
		c.mu.Unlock()
		s.Consume(int(pad))
		c.mu.Lock()
	}
	s.unconsumed += int64(len(data))
	s.dataReceived += int64(len(data))
	end := f.StreamEnded()
	if s.contentLength >= 0 && (s.dataReceived > s.contentLength || end && s.dataReceived != s.contentLength) {
		notify := c.resetLocked(s, ErrCodeProtocol)
		c.mu.Unlock()
		if notify {
			c.notifyReset(s, ErrCodeProtocol)
		}
		return nil
	}
	s.lastActive = nowNano()
	if end {
		s.remoteEnded = true
		if s.localEnded {
			c.closeStreamLocked(s, ErrCodeNo)
		}
	}
	c.mu.Unlock()
	c.deliverFor(s)
	if !s.delivered && c.server {
		return nil
	}
	if c.enter(s) {
		s.handler.OnData(s, data, end)
		c.leave()
	}
	return nil
}

func (c *Conn) onHeaders(fh http2.FrameHeader, fragment []byte, selfDep bool) error {
	id := fh.StreamID
	kind := kindRequest
	if !c.server {
		kind = kindResponse
	}
	c.mu.Lock()
	s := c.streams[id]
	idle := c.idleLocked(id)
	c.mu.Unlock()
	switch {
	case s != nil:
		if c.server || s.gotResponse {
			kind = kindTrailers
		}
	case c.server && id%2 == 0:
		return http2.ConnectionError(ErrCodeProtocol)
	case c.server && id <= c.maxPeerID:
		// A closed stream (RFC 9113 §5.1); decoded below to keep HPACK in step.
		return http2.ConnectionError(ErrCodeStreamClosed)
	case c.server:
		c.mu.Lock()
		c.maxPeerID = id // under c.mu: GOAWAY frames name it from other goroutines
		c.mu.Unlock()
	case idle:
		return http2.ConnectionError(ErrCodeProtocol)
	default:
		// A response on a stream we reset: decoded and dropped, to keep HPACK in step.
		kind = kindTrailers
	}
	c.block.start(id, fh.Flags.Has(http2.FlagHeadersEndStream), kind, &c.hdr)
	if selfDep {
		c.block.err = errMalformed // a stream depending on itself (RFC 9113 §5.3.1)
	}
	return c.onFragment(fragment, fh.Flags.Has(http2.FlagHeadersEndHeaders))
}

func (c *Conn) onContinuation(f *http2.ContinuationFrame) error {
	if c.block.h == nil || f.StreamID != c.block.streamID {
		return http2.ConnectionError(ErrCodeProtocol)
	}
	return c.onFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// maxBlock is the largest encoded header block accepted before the connection is closed:
// beyond it the peer floods CONTINUATION frames rather than sends large headers.
func (c *Conn) maxBlock() int { return 2*int(c.cfg.MaxHeaderListSize) + 1024 }

func (c *Conn) onFragment(p []byte, endHeaders bool) error {
	b := &c.block
	b.bytes += len(p)
	if b.bytes > c.maxBlock() {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	if _, err := c.dec.Write(p); err != nil {
		return http2.ConnectionError(ErrCodeCompression)
	}
	if !endHeaders {
		return nil
	}
	if err := c.dec.Close(); err != nil {
		return http2.ConnectionError(ErrCodeCompression)
	}
	ok := b.finish()
	h, id, end, kind, tooLarge := b.h, b.streamID, b.endStream, b.kind, b.tooLarge
	b.h = nil
	if c.server {
		return c.serverHeaders(id, h, end, kind, ok, tooLarge)
	}
	return c.clientHeaders(id, h, end, kind, ok && !tooLarge)
}

func (c *Conn) serverHeaders(id uint32, h *Header, end bool, kind headerKind, ok, tooLarge bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == kindTrailers {
		s := c.streams[id]
		if s == nil {
			return nil
		}
		notify := false
		switch {
		case s.remoteEnded:
			notify = c.resetLocked(s, ErrCodeStreamClosed)
		case !ok || tooLarge || !end || s.contentLength >= 0 && s.dataReceived != s.contentLength:
			notify = c.resetLocked(s, ErrCodeProtocol)
		}
		if notify || s.closed {
			c.mu.Unlock()
			if notify {
				c.notifyReset(s, s.resetCode)
			}
			c.mu.Lock()
			return nil
		}
		s.remoteEnded = true
		s.lastActive = nowNano()
		if s.localEnded {
			c.closeStreamLocked(s, ErrCodeNo)
		}
		c.mu.Unlock()
		c.deliverFor(s)
		if s.delivered && c.enter(s) {
			s.handler.OnTrailers(s, h)
			c.leave()
		}
		c.mu.Lock()
		return nil
	}
	if c.goAwaySent || c.closed {
		return c.queueRSTLocked(id, ErrCodeRefusedStream)
	}
	if !ok {
		return c.queueRSTLocked(id, ErrCodeProtocol)
	}
	if tooLarge {
		c.stats.HeaderListTooLarge++
		c.queueHeadersLocked(id, &Header{Status: 431}, kindResponse, true)
		if !end {
			return c.queueRSTLocked(id, ErrCodeNo)
		}
		return nil
	}
	if uint32(len(c.streams)) >= c.cfg.MaxConcurrentStreams {
		c.stats.RefusedStreams++
		return c.queueRSTLocked(id, ErrCodeRefusedStream)
	}
	s := &Stream{
		c: c, id: id, handler: c.handler,
		sendWindow: c.peerInitial, recvWindow: int64(c.cfg.InitialStreamWindowSize),
		remoteEnded: end, lastActive: nowNano(), start: time.Now(), contentLength: h.ContentLength,
	}
	c.streams[id] = s
	c.stats.StreamsOpened++
	c.pending = append(c.pending, pendingStream{s: s, h: c.headerCopy(h), end: end})
	if n := c.cfg.MaxRequestsPerConnection; n > 0 && c.stats.StreamsOpened >= n {
		c.finalGoAwayLocked()
	}
	return nil
}

func (c *Conn) clientHeaders(id uint32, h *Header, end bool, kind headerKind, ok bool) error {
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		return nil // a stream we reset meanwhile
	}
	notify := false
	switch {
	case s.remoteEnded:
		notify = c.resetLocked(s, ErrCodeStreamClosed)
	case !ok || kind == kindTrailers && !end:
		notify = c.resetLocked(s, ErrCodeProtocol)
	}
	if notify {
		c.mu.Unlock()
		c.notifyReset(s, s.resetCode)
		return nil
	}
	if kind == kindResponse && h.Status >= 200 {
		s.gotResponse = true
		// A response to HEAD, a 204 and a 304 announce a length their (empty) body does not
		// have (RFC 9110 §8.6).
		if !s.headRequest && h.Status != 204 && h.Status != 304 {
			s.contentLength = h.ContentLength
		}
	}
	s.lastActive = nowNano()
	if end {
		s.remoteEnded = true
		if s.localEnded {
			c.closeStreamLocked(s, ErrCodeNo)
		}
	}
	c.mu.Unlock()
	if !c.enter(s) {
		return nil
	}
	if kind == kindTrailers {
		s.handler.OnTrailers(s, h)
	} else {
		s.handler.OnHeaders(s, h, end)
	}
	c.leave()
	return nil
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		if err := st.Valid(); err != nil {
			return err
		}
		switch st.ID {
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSize(min(st.Val, 4096))
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStreams = st.Val
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - c.peerInitial
			for _, s := range c.streams {
				s.sendWindow += delta
				if s.sendWindow > maxWindow {
					return http2.ConnectionError(ErrCodeFlowControl)
				}
			}
			c.peerInitial = int64(st.Val)
		case http2.SettingMaxFrameSize:
			c.peerMaxFrameSize = st.Val
		case http2.SettingMaxHeaderListSize:
			c.peerMaxHeaderList = st.Val
		case http2.SettingEnableConnectProtocol:
			c.peerConnectProto = st.Val == 1
		case http2.SettingEnablePush:
			if !c.server && st.Val != 0 {
				return http2.ConnectionError(ErrCodeProtocol)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.cond.Broadcast()
	return c.queueControlLocked(http2.FrameSettings, http2.FlagSettingsAck, 0, nil)
}

func (c *Conn) onPing(f *http2.PingFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.IsAck() {
		if c.server && f.Data == c.shutdownPing && !c.shutdownPingSentAt.IsZero() {
			c.finalGoAwayLocked()
		}
		return nil
	}
	return c.queueControlLocked(http2.FramePing, http2.FlagPingAck, 0, f.Data[:])
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wuCount++
	if c.wuCount > c.cfg.MaxWindowUpdatesPerDataFrame*(c.dataFramesSent+1)+10*(c.stats.StreamsOpened+1) {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	incr := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWindow += incr
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(ErrCodeFlowControl)
		}
		c.cond.Broadcast()
		return nil
	}
	s := c.streams[f.StreamID]
	if s == nil {
		if c.idleLocked(f.StreamID) {
			return http2.ConnectionError(ErrCodeProtocol)
		}
		return nil
	}
	s.sendWindow += incr
	if s.sendWindow > maxWindow {
		if c.resetLocked(s, ErrCodeFlowControl) {
			c.mu.Unlock()
			c.notifyReset(s, ErrCodeFlowControl)
			c.mu.Lock()
		}
		return nil
	}
	c.cond.Broadcast()
	return nil
}

func (c *Conn) onRSTStream(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	s := c.streams[f.StreamID]
	if s == nil {
		idle := c.idleLocked(f.StreamID)
		c.mu.Unlock()
		if idle {
			return http2.ConnectionError(ErrCodeProtocol)
		}
		return nil
	}
	premature := c.server && !s.localEnded && time.Since(s.start) < c.cfg.PrematureResetMinLifetime
	c.closeStreamLocked(s, f.ErrCode)
	if premature {
		c.stats.PrematureResets++
	}
	rapid := c.server && c.stats.StreamsOpened >= c.cfg.PrematureResetTotalStreams &&
		2*c.stats.PrematureResets >= c.stats.StreamsOpened
	c.mu.Unlock()
	if s.delivered {
		c.notifyReset(s, f.ErrCode)
	}
	if rapid {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	return nil
}

func (c *Conn) onPriority(f *http2.PriorityFrame) error {
	c.priorityCount++
	c.mu.Lock()
	opened := c.stats.StreamsOpened
	c.mu.Unlock()
	if c.priorityCount > c.cfg.MaxPriorityFramesPerStream*(opened+1) {
		return http2.ConnectionError(ErrCodeEnhanceYourCalm)
	}
	if f.StreamDep == f.StreamID {
		c.mu.Lock()
		s := c.streams[f.StreamID]
		notify := false
		if s != nil {
			notify = c.resetLocked(s, ErrCodeProtocol)
		} else {
			c.queueRSTLocked(f.StreamID, ErrCodeProtocol)
		}
		c.mu.Unlock()
		if notify {
			c.notifyReset(s, ErrCodeProtocol)
		}
	}
	return nil // priorities are otherwise ignored, as Envoy does
}

func (c *Conn) onGoAway(f *http2.GoAwayFrame) error {
	c.mu.Lock()
	c.peerGoAway = true
	c.peerGoAwayLast = f.LastStreamID
	var refused []*Stream
	if !c.server {
		for id, s := range c.streams {
			if id > f.LastStreamID {
				c.closeStreamLocked(s, ErrCodeRefusedStream)
				refused = append(refused, s)
			}
		}
	}
	if !c.server && len(c.streams) == 0 {
		// A client has nothing left to do on the connection. A server keeps serving until
		// its client closes: frames may follow the GOAWAY (a PING to answer).
		c.failLocked(errGracefulClose)
	}
	c.mu.Unlock()
	for _, s := range refused {
		c.notifyReset(s, ErrCodeRefusedStream)
	}
	return nil
}
