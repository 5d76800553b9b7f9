package http2

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ClientPreface is what a client sends first (RFC 9113 §3.4).
const ClientPreface = http2.ClientPreface

var (
	errOutboundFlood = errors.New("http2: too many frames queued for a peer that does not read")
	errGracefulClose = errors.New("http2: connection shut down")
	errBadPreface    = errors.New("http2: bad connection preface")
)

// Stats are a connection's counters, for tests and the connection manager's stats.
type Stats struct {
	Writes               int // Write calls on the connection
	StreamsOpened        int
	PrematureResets      int
	OutboundFlood        int
	OutboundControlFlood int
	RefusedStreams       int
	HeaderListTooLarge   int
	GoAwayCode           ErrCode // the last GOAWAY we sent
	GoAwaySent           bool
}

// Conn is one HTTP/2 connection, server or client side.
type Conn struct {
	nc      net.Conn
	cfg     Config
	server  bool
	handler Handler // server: every stream's
	br      *bufio.Reader
	fr      *http2.Framer
	dec     *hpack.Decoder
	done    chan struct{} // closed when the reading goroutine has ended

	// Reading goroutine only.
	block         headerBlock
	hbuf          []byte // a HEADERS frame's payload
	hdr           Header
	maxPeerID     uint32 // highest stream ID the peer opened; written under c.mu
	pending       []pendingStream
	freeHdrs      []*Header
	emptyFrames   int
	priorityCount int
	wuCount       int
	sawSettings   bool
	cbMu          sync.Mutex // serializes handler callbacks with the idle timer's
	shutdownPing  [8]byte

	mu       sync.Mutex
	cond     *sync.Cond // flow-control windows opened, buffer written, stream closed
	closed   bool
	closeErr error
	streams  map[uint32]*Stream
	enc      *hpack.Encoder
	encBuf   encWriter
	out      []byte
	spare    []byte
	flushing bool

	queuedFrames, queuedControl     int
	inflightFrames, inflightControl int
	dataFramesSent                  int
	stats                           Stats

	sendWindow  int64
	recvWindow  int64
	recvUnacked int64
	peerInitial int64
	// peerMaxFrameSize is what we may send in one frame.
	peerMaxFrameSize   uint32
	peerMaxStreams     uint32
	peerMaxHeaderList  uint32
	peerConnectProto   bool
	peerGoAway         bool
	peerGoAwayLast     uint32
	goAwaySent         bool
	lingering          bool // half-closed after GOAWAY: the reader drains, then closes
	closeWhenIdle      bool // the final GOAWAY went out: close once no stream is left
	nextID             uint32
	lastActive         int64
	idleTimer          *time.Timer
	shutdownPingSentAt time.Time
}

func newConn(nc net.Conn, cfg Config, server bool) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		nc:               nc,
		cfg:              cfg,
		server:           server,
		done:             make(chan struct{}),
		streams:          make(map[uint32]*Stream),
		sendWindow:       defaultWindow,
		recvWindow:       defaultWindow,
		peerInitial:      defaultWindow,
		peerMaxFrameSize: defaultFrameSize,
		peerMaxStreams:   100, // until the peer's SETTINGS say otherwise
		lastActive:       nowNano(),
	}
	c.cond = sync.NewCond(&c.mu)
	// Small: an idle connection keeps it, and DATA larger than it bypasses it anyway.
	c.br = bufio.NewReaderSize(nc, 4<<10)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(cfg.MaxFrameSize)
	c.dec = hpack.NewDecoder(cfg.HeaderTableSize, c.block.emit)
	c.dec.SetMaxStringLength(int(cfg.MaxHeaderListSize))
	c.block.c = c
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.hdr.ContentLength = -1
	if server {
		c.peerMaxStreams = 0 // a server never opens streams
	} else {
		c.nextID = 1
	}
	return c
}

// queueSettingsLocked queues our SETTINGS and the connection window's first update.
func (c *Conn) queueSettingsLocked() {
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.cfg.MaxConcurrentStreams},
		{ID: http2.SettingInitialWindowSize, Val: c.cfg.InitialStreamWindowSize},
		{ID: http2.SettingMaxFrameSize, Val: c.cfg.MaxFrameSize},
		{ID: http2.SettingMaxHeaderListSize, Val: c.cfg.MaxHeaderListSize},
	}
	if c.cfg.HeaderTableSize != 4096 {
		settings = append(settings, http2.Setting{ID: http2.SettingHeaderTableSize, Val: c.cfg.HeaderTableSize})
	}
	if !c.server {
		settings = append(settings, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	} else if c.cfg.EnableConnectProtocol {
		settings = append(settings, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	p := make([]byte, 0, 6*len(settings))
	for _, s := range settings {
		p = binary.BigEndian.AppendUint16(p, uint16(s.ID))
		p = binary.BigEndian.AppendUint32(p, s.Val)
	}
	c.out = appendFrameHeader(c.out, len(p), http2.FrameSettings, 0, 0)
	c.out = append(c.out, p...)
	c.queuedFrames++
	if d := int64(c.cfg.InitialConnectionWindowSize) - defaultWindow; d > 0 {
		c.queueWindowUpdateLocked(0, uint32(d))
		c.recvWindow += d
	}
}

// Stats returns a copy of the connection's counters.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Close closes the connection at once; open streams are reset.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.failLocked(ErrConnClosed)
	c.mu.Unlock()
	return nil
}

// failLocked marks the connection closed and closes the socket, which ends the reading
// goroutine; that goroutine resets the streams left.
func (c *Conn) failLocked(err error) {
	if c.closed {
		return
	}
	c.closed = true
	c.closeErr = err
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	c.cond.Broadcast()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && c.goAwaySent {
		// Closing with input unread makes the kernel answer with RST, which can destroy our
		// GOAWAY before the peer reads it: half-close instead, and let the reading goroutine
		// drain what the peer still sends, for a second at most, before it closes.
		cw.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(time.Second))
		c.lingering = true
		return
	}
	c.nc.Close()
}

// goAwayLocked sends GOAWAY with an error and closes the connection once it is written.
func (c *Conn) goAwayLocked(code ErrCode, debug string) {
	if c.closed {
		return
	}
	// The connection is ending: the GOAWAY gets a second to leave, not longer.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.queueGoAwayLocked(c.maxPeerIDLocked(), code, debug)
	c.stats.GoAwaySent, c.stats.GoAwayCode = true, code
	c.goAwaySent = true
	c.closeWhenIdle = true
	for _, s := range c.streams {
		c.closeStreamLocked(s, code)
	}
	if c.flushing {
		return // the writer closes the connection once its last batch is out
	}
	c.flushLocked()
}

func (c *Conn) maxPeerIDLocked() uint32 {
	if c.server {
		return c.maxPeerID
	}
	return 0
}

// Shutdown stops the connection gracefully, as Envoy does: a GOAWAY announcing the end
// without naming a last stream and a PING; once the PING is answered (or after
// ShutdownPingTimeout) a second GOAWAY with the last stream the peer opened, after which
// the streams in progress finish and the connection closes. Shutdown returns at once.
func (c *Conn) Shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.goAwaySent || !c.shutdownPingSentAt.IsZero() {
		return
	}
	if !c.server {
		c.queueGoAwayLocked(0, ErrCodeNo, "")
		c.goAwaySent = true
		c.closeWhenIdle = true
		c.flushLocked()
		return
	}
	c.queueGoAwayLocked(maxWindow, ErrCodeNo, "")
	copy(c.shutdownPing[:], "shutdown")
	c.queueControlLocked(http2.FramePing, 0, 0, c.shutdownPing[:])
	c.shutdownPingSentAt = time.Now()
	time.AfterFunc(c.cfg.ShutdownPingTimeout, func() {
		c.mu.Lock()
		c.finalGoAwayLocked()
		c.mu.Unlock()
	})
	c.flushLocked()
}

// finalGoAwayLocked is the second phase of Shutdown.
func (c *Conn) finalGoAwayLocked() {
	if c.closed || c.goAwaySent {
		return
	}
	c.queueGoAwayLocked(c.maxPeerID, ErrCodeNo, "")
	c.stats.GoAwaySent, c.stats.GoAwayCode = true, ErrCodeNo
	c.goAwaySent = true
	c.closeWhenIdle = true
	c.flushLocked() // closes the connection when no stream is left
}

// closeStreamLocked ends a stream: it leaves the table, and the connection window gets
// back what the handler never consumed.
func (c *Conn) closeStreamLocked(s *Stream, code ErrCode) {
	if s.closed {
		return
	}
	s.closed = true
	s.resetCode = code
	delete(c.streams, s.id)
	if s.unconsumed > 0 {
		c.consumeConnLocked(s.unconsumed)
		s.unconsumed = 0
	}
	if len(c.streams) == 0 {
		c.lastActive = nowNano()
	}
	c.cond.Broadcast()
}

func (c *Conn) endLocalLocked(s *Stream) {
	s.localEnded = true
	if s.remoteEnded {
		c.closeStreamLocked(s, ErrCodeNo)
	}
}

func (c *Conn) consumeConnLocked(n int64) {
	c.recvUnacked += n
	if c.recvUnacked >= int64(c.cfg.InitialConnectionWindowSize)/2 {
		c.queueWindowUpdateLocked(0, uint32(c.recvUnacked))
		c.recvWindow += c.recvUnacked
		c.recvUnacked = 0
		c.kickLocked()
	}
}

// serve is the reading goroutine's loop. It returns when the connection ends, after
// resetting the streams left.
func (c *Conn) serve() {
	defer c.end()
	if c.server {
		var buf [len(ClientPreface)]byte
		if _, err := io.ReadFull(c.br, buf[:]); err != nil || string(buf[:]) != ClientPreface {
			c.mu.Lock()
			c.failLocked(errBadPreface)
			c.mu.Unlock()
			return
		}
	}
	c.armIdle()
	for {
		if c.br.Buffered() < 9 {
			// Nothing more is waiting: hand over the requests read so far and have the
			// frames queued by this batch written. Delaying new requests to the end of a
			// batch means a HEADERS that the same batch resets never reaches the handler.
			c.deliverPending()
			c.mu.Lock()
			if c.closeWhenIdle && len(c.streams) == 0 && !c.flushing {
				c.flushLocked() // the last stream ended here: flushLocked closes
			} else {
				c.kickLocked()
			}
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return
			}
		}
		fh, err := c.fr.ReadFrameHeader()
		if err != nil {
			c.readError(err)
			return
		}
		if err := c.precheck(fh); err != nil {
			c.connError(err)
			return
		}
		if fh.Type == http2.FrameHeaders {
			// Parsed here rather than by the framer, which allocates each HEADERS frame.
			err = c.readHeaders(fh)
		} else {
			var f http2.Frame
			if f, err = c.fr.ReadFrameForHeader(fh); err != nil {
				c.readError(err)
				return
			}
			err = c.handleFrame(f)
		}
		if err != nil {
			c.connError(err)
			return
		}
	}
}

func (c *Conn) readError(err error) {
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.connError(http2.ConnectionError(ErrCodeFrameSize))
	case errors.As(err, &ce):
		c.connError(err)
	case errors.As(err, &se):
		// The framer reports stream errors only for frames it could parse whole, so the
		// connection goes on; but one error frame per turn is plenty for a misbehaving peer.
		c.mu.Lock()
		c.queueRSTLocked(se.StreamID, se.Code)
		if s := c.streams[se.StreamID]; s != nil {
			c.closeStreamLocked(s, se.Code)
		}
		c.mu.Unlock()
		c.connError(http2.ConnectionError(se.Code))
	default:
		c.mu.Lock()
		c.failLocked(err)
		c.mu.Unlock()
	}
}

// connError ends the connection with GOAWAY carrying err's code.
func (c *Conn) connError(err error) {
	code := ErrCodeProtocol
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		code = ErrCode(ce)
	}
	c.mu.Lock()
	c.goAwayLocked(code, "")
	c.flushLocked()
	c.mu.Unlock()
}

// end runs when the reading goroutine stops: every stream left is reset.
func (c *Conn) end() {
	c.mu.Lock()
	if c.flushing && !c.closed {
		// Let the last frames (a GOAWAY) out, but not wait long for a peer that does not read.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		for c.flushing && !c.closed {
			c.cond.Wait()
		}
	}
	c.failLocked(io.EOF)
	if c.lingering {
		c.mu.Unlock()
		io.CopyN(io.Discard, c.br, 1<<20)
		c.mu.Lock()
	}
	c.nc.Close()
	var left []*Stream
	for _, s := range c.streams {
		left = append(left, s)
		c.closeStreamLocked(s, ErrCodeCancel)
	}
	c.mu.Unlock()
	for _, p := range c.pending {
		left = append(left, p.s)
	}
	c.pending = c.pending[:0]
	for _, s := range left {
		if (s.delivered || !c.server) && c.enter(s) {
			s.handler.OnReset(s, ErrCodeCancel)
			c.leave()
		}
	}
	close(c.done)
}

// pendingStream is a new stream whose request headers wait for the end of the read batch.
type pendingStream struct {
	s   *Stream
	h   *Header
	end bool // the HEADERS frame's END_STREAM
}

// deliverPending hands the requests of the last batch to the handler.
func (c *Conn) deliverPending() {
	for i := range c.pending {
		p := c.pending[i]
		c.pending[i] = pendingStream{}
		c.deliver(p.s, p.h, p.end)
	}
	c.pending = c.pending[:0]
}

// deliverFor delivers a pending stream's headers before another event of the stream.
func (c *Conn) deliverFor(s *Stream) {
	if s.delivered {
		return
	}
	for i := range c.pending {
		if c.pending[i].s == s {
			h := c.pending[i].h
			c.pending[i].h = nil
			c.deliver(s, h, c.pending[i].end)
			return
		}
	}
}

// deliver calls OnHeaders for a stream still pending, unless it was reset meanwhile.
func (c *Conn) deliver(s *Stream, h *Header, end bool) {
	if s.delivered || h == nil {
		return
	}
	c.mu.Lock()
	s.delivered = true // under c.mu: the idle timer reads it
	closed := s.closed
	c.mu.Unlock()
	if !closed && c.enter(s) {
		s.handler.OnHeaders(s, h, end)
		c.leave()
	}
	h.reset()
	c.freeHdrs = append(c.freeHdrs, h)
}

// headerCopy returns a Header to keep a pending stream's request in.
func (c *Conn) headerCopy(src *Header) *Header {
	var h *Header
	if n := len(c.freeHdrs); n > 0 {
		h = c.freeHdrs[n-1]
		c.freeHdrs = c.freeHdrs[:n-1]
	} else {
		h = new(Header)
	}
	fields := append(h.Fields[:0], src.Fields...)
	*h = *src
	h.Fields = fields
	return h
}
