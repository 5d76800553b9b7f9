package http2

import (
	"errors"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Header is a decoded or to-be-encoded header block: the pseudo-header fields by name and
// the regular fields in order, with lower-case names. A Header passed to a Handler is reused
// once the callback returns; its strings may be kept.
type Header struct {
	Method    string // request pseudo-headers
	Scheme    string
	Authority string
	Path      string
	Protocol  string // extended CONNECT (RFC 8441)
	Status    int    // response pseudo-header
	Fields    []hpack.HeaderField
	// ContentLength is the parsed content-length field of a received block, -1 when absent.
	ContentLength int64
}

// Get returns the first value of the named field (name in lower case).
func (h *Header) Get(name string) string {
	for i := range h.Fields {
		if h.Fields[i].Name == name {
			return h.Fields[i].Value
		}
	}
	return ""
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	h.Fields = append(h.Fields, hpack.HeaderField{Name: name, Value: value})
}

func (h *Header) reset() {
	*h = Header{Fields: h.Fields[:0], ContentLength: -1}
}

// Handler receives a connection's stream events. A server has one for the connection; a
// client gives one to each stream it opens. The callbacks of one connection never run
// concurrently; they run on its reading goroutine (OnStreamIdle and the OnReset it may lead
// to, on a timer's) and must not block: a handler that works for long hands the stream to a
// goroutine of its own. The Stream's methods may be called from anywhere.
type Handler interface {
	// OnHeaders delivers a stream's headers: a request on a server (the stream is new), a
	// response on a client (informational 1xx ones too). end is END_STREAM.
	OnHeaders(s *Stream, h *Header, end bool)
	// OnData delivers request (server) or response (client) body bytes. p is valid only
	// during the call. The bytes count against the flow-control windows until released with
	// s.Consume.
	OnData(s *Stream, p []byte, end bool)
	// OnTrailers delivers trailers, which end the stream's inbound side.
	OnTrailers(s *Stream, h *Header)
	// OnReset reports that the stream ended abnormally: reset by the peer (code is theirs),
	// or by the codec because of a protocol error, a timeout or the connection's end. No
	// other callback follows for the stream.
	OnReset(s *Stream, code ErrCode)
}

// IdleHandler is implemented by handlers that answer a stream idle timeout themselves (a
// connection manager sends 408 when the response has not started). Without it the codec
// resets the stream with CANCEL.
type IdleHandler interface {
	OnStreamIdle(s *Stream)
}

// Errors returned by the Stream's write methods.
var (
	ErrStreamClosed = errors.New("http2: stream closed")
	ErrConnClosed   = errors.New("http2: connection closed")
	ErrHeadersSent  = errors.New("http2: headers already sent")
)

// Stream is one HTTP/2 stream. Its write methods are safe for concurrent use with the
// connection's goroutine but a stream's writes must come from one goroutine at a time.
type Stream struct {
	c       *Conn
	id      uint32
	handler Handler
	// Value is the handler's own state for the stream (a connection manager's stream).
	Value any

	// Guarded by c.mu.
	sendWindow   int64
	recvWindow   int64 // how much the peer may still send
	recvUnacked  int64 // consumed but not yet given back in a WINDOW_UPDATE
	unconsumed   int64 // delivered but not yet consumed
	wroteHeaders bool
	localEnded   bool // we sent END_STREAM
	remoteEnded  bool // the peer sent END_STREAM
	closed       bool
	resetCode    ErrCode
	lastActive   int64 // unix nanos of the last frame either way
	idleFired    bool

	released bool // guarded by c.cbMu: Release was called, no more callbacks

	// Reader goroutine only.
	start         time.Time
	delivered     bool // OnHeaders was called
	contentLength int64
	dataReceived  int64
	gotResponse   bool // client: a final (non-1xx) response arrived
	headRequest   bool // client: the request is a HEAD
}

// ID returns the stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Conn returns the stream's connection.
func (s *Stream) Conn() *Conn { return s.c }

// WriteHeaders sends a server stream's response headers (h.Status; an informational 1xx
// may come first). The frames are queued and written at once only when end is set, for an
// informational status, or by the next write or Flush, so that headers and a first body
// chunk leave together.
func (s *Stream) WriteHeaders(h *Header, end bool) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	if s.wroteHeaders || !c.server {
		return ErrHeadersSent
	}
	if h.Status >= 200 {
		s.wroteHeaders = true
	}
	if err := c.queueHeadersLocked(s.id, h, kindResponse, end); err != nil {
		return err
	}
	s.lastActive = nowNano()
	if end {
		c.endLocalLocked(s)
	}
	if end || h.Status < 200 {
		c.flushLocked()
	}
	return nil
}

// WriteTrailers sends trailers, ending the stream.
func (s *Stream) WriteTrailers(h *Header) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := s.writableLocked(); err != nil {
		return err
	}
	s.wroteHeaders = true
	if err := c.queueHeadersLocked(s.id, h, kindTrailers, true); err != nil {
		return err
	}
	c.endLocalLocked(s)
	c.flushLocked()
	return nil
}

// WriteData sends body bytes, blocking while the flow-control windows are closed or the
// connection's write buffer is full. p may be reused once WriteData returns. The data is
// written before WriteData returns, unless another goroutine is writing the connection, in
// which case that goroutine writes it in its next turn.
func (s *Stream) WriteData(p []byte, end bool) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if err := s.writableLocked(); err != nil {
			return err
		}
		if len(p) == 0 && !end {
			c.flushLocked()
			return nil
		}
		n := len(p)
		n = min(n, int(c.peerMaxFrameSize))
		if n > 0 {
			// A window may be negative after the peer lowered SETTINGS_INITIAL_WINDOW_SIZE.
			n = min(n, int(max(0, min(s.sendWindow, c.sendWindow))))
			if len(c.out) >= maxOutBuffered {
				n = 0
			}
		}
		if n == 0 && len(p) > 0 {
			c.flushLocked()
			if err := s.writableLocked(); err != nil {
				return err
			}
			if min(s.sendWindow, c.sendWindow) <= 0 || len(c.out) >= maxOutBuffered {
				c.cond.Wait()
			}
			continue
		}
		last := n == len(p) && end
		c.queueDataLocked(s.id, p[:n], last)
		s.sendWindow -= int64(n)
		c.sendWindow -= int64(n)
		c.dataFramesSent++
		p = p[n:]
		s.lastActive = nowNano()
		if last {
			c.endLocalLocked(s)
			break
		}
		if len(p) == 0 {
			break
		}
	}
	c.flushLocked()
	return nil
}

// Flush writes what the stream's previous calls queued.
func (s *Stream) Flush() {
	s.c.mu.Lock()
	s.c.flushLocked()
	s.c.mu.Unlock()
}

// Reset ends the stream with RST_STREAM. It is a no-op on a closed stream. The handler's
// OnReset is not called for a reset the handler asked for.
func (s *Stream) Reset(code ErrCode) {
	c := s.c
	c.mu.Lock()
	if !s.closed && !c.closed {
		c.queueRSTLocked(s.id, code)
		c.closeStreamLocked(s, code)
		c.flushLocked()
	}
	c.mu.Unlock()
}

// Release resets the stream with code if it is still open and waits for a callback of the
// stream in progress to return; the handler is never called for s afterwards, so it may
// recycle whatever s.Value points to. It must not be called from a callback.
func (s *Stream) Release(code ErrCode) {
	s.Reset(code)
	s.c.cbMu.Lock()
	s.released = true
	s.c.cbMu.Unlock()
}

// Consume gives n delivered body bytes back to the flow-control windows; a WINDOW_UPDATE
// goes out once half of a window is consumed.
func (s *Stream) Consume(n int) {
	if n <= 0 {
		return
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return // the connection window was given back when the stream closed
	}
	s.unconsumed -= int64(n)
	c.consumeConnLocked(int64(n))
	if s.remoteEnded {
		return
	}
	s.recvUnacked += int64(n)
	if s.recvUnacked >= int64(c.cfg.InitialStreamWindowSize)/2 {
		c.queueWindowUpdateLocked(s.id, uint32(s.recvUnacked))
		s.recvWindow += s.recvUnacked
		s.recvUnacked = 0
		c.kickLocked()
	}
}

// Closed reports whether the stream is over (both sides ended, or reset).
func (s *Stream) Closed() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.closed
}

func (s *Stream) writableLocked() error {
	if s.c.closed {
		return ErrConnClosed
	}
	if s.closed || s.localEnded {
		return ErrStreamClosed
	}
	return nil
}

func nowNano() int64 { return time.Now().UnixNano() }
