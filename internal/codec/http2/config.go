package http2

import (
	"time"

	"golang.org/x/net/http2"
)

// ErrCode is an HTTP/2 error code (RFC 9113 §7).
type ErrCode = http2.ErrCode

// Error codes used by the codec and its callers.
const (
	ErrCodeNo                 = http2.ErrCodeNo
	ErrCodeProtocol           = http2.ErrCodeProtocol
	ErrCodeInternal           = http2.ErrCodeInternal
	ErrCodeFlowControl        = http2.ErrCodeFlowControl
	ErrCodeStreamClosed       = http2.ErrCodeStreamClosed
	ErrCodeFrameSize          = http2.ErrCodeFrameSize
	ErrCodeRefusedStream      = http2.ErrCodeRefusedStream
	ErrCodeCancel             = http2.ErrCodeCancel
	ErrCodeCompression        = http2.ErrCodeCompression
	ErrCodeEnhanceYourCalm    = http2.ErrCodeEnhanceYourCalm
	ErrCodeHTTP11Required     = http2.ErrCodeHTTP11Required
	ErrCodeConnect            = http2.ErrCodeConnect
	ErrCodeInadequateSecurity = http2.ErrCodeInadequateSecurity
)

// Config holds a connection's settings and limits. The zero value of a field means its
// default (in parentheses); Envoy's defaults where Envoy has one.
type Config struct {
	// MaxConcurrentStreams is advertised in SETTINGS; streams the peer opens beyond it are
	// refused with REFUSED_STREAM (1024).
	MaxConcurrentStreams uint32
	// InitialStreamWindowSize and InitialConnectionWindowSize are the receive windows
	// (1 MiB and 16 MiB). A WINDOW_UPDATE is sent once half of a window has been consumed.
	InitialStreamWindowSize     uint32
	InitialConnectionWindowSize uint32
	// MaxFrameSize is the largest frame payload accepted (16384, the protocol minimum).
	MaxFrameSize uint32
	// MaxHeaderListSize bounds a decoded header block, counted as RFC 9113 §6.5.2 does
	// (64 KiB). A larger request gets 431; an encoded block larger than twice this is a
	// flood and closes the connection.
	MaxHeaderListSize uint32
	// HeaderTableSize is the HPACK dynamic table our decoder keeps (4096).
	HeaderTableSize uint32

	// MaxOutboundFrames and MaxOutboundControlFrames bound the frames queued for a peer that
	// does not read (10000 and 1000); beyond either the connection is closed.
	MaxOutboundFrames        int
	MaxOutboundControlFrames int
	// MaxConsecutiveEmptyFrames bounds inbound DATA, HEADERS and CONTINUATION frames with
	// an empty payload and no END_STREAM in a row (1).
	MaxConsecutiveEmptyFrames int
	// MaxPriorityFramesPerStream bounds inbound PRIORITY frames, counted per opened stream
	// plus one (100).
	MaxPriorityFramesPerStream int
	// MaxWindowUpdatesPerDataFrame bounds inbound WINDOW_UPDATE frames per DATA frame sent,
	// plus a floor of 10 per stream opened (10).
	MaxWindowUpdatesPerDataFrame int

	// PrematureResetTotalStreams and PrematureResetMinLifetime drive rapid-reset detection:
	// once this many streams were opened (500), a connection on which at least half of them
	// were reset by the peer before their response ended and within PrematureResetMinLifetime
	// of their start (1s) is closed with GOAWAY ENHANCE_YOUR_CALM.
	PrematureResetTotalStreams int
	PrematureResetMinLifetime  time.Duration

	// MaxRequestsPerConnection, when set, sends GOAWAY once that many streams were opened.
	MaxRequestsPerConnection int
	// IdleTimeout closes (GOAWAY, then close) a connection without streams for that long;
	// zero disables it.
	IdleTimeout time.Duration
	// StreamIdleTimeout fires for a stream with no frame in either direction for that long:
	// the handler's OnStreamIdle if it implements IdleHandler, else the stream is reset with
	// CANCEL. Zero disables it.
	StreamIdleTimeout time.Duration
	// ShutdownPingTimeout bounds the wait for the PING acknowledgement between the two
	// GOAWAY frames of a graceful shutdown (1s).
	ShutdownPingTimeout time.Duration

	// EnableConnectProtocol advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), which
	// lets a client send extended CONNECT (:protocol), e.g. WebSockets over HTTP/2.
	EnableConnectProtocol bool
}

func (c Config) withDefaults() Config {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxConcurrentStreams, 1024)
	def(&c.InitialStreamWindowSize, 1<<20)
	def(&c.InitialConnectionWindowSize, 16<<20)
	def(&c.MaxFrameSize, 16384)
	def(&c.MaxHeaderListSize, 64<<10)
	def(&c.HeaderTableSize, 4096)
	if c.InitialStreamWindowSize > maxWindow {
		c.InitialStreamWindowSize = maxWindow
	}
	if c.InitialConnectionWindowSize > maxWindow {
		c.InitialConnectionWindowSize = maxWindow
	}
	if c.MaxFrameSize < 16384 {
		c.MaxFrameSize = 16384
	}
	if c.MaxFrameSize > 1<<24-1 {
		c.MaxFrameSize = 1<<24 - 1
	}
	defInt(&c.MaxOutboundFrames, 10000)
	defInt(&c.MaxOutboundControlFrames, 1000)
	defInt(&c.MaxConsecutiveEmptyFrames, 1)
	defInt(&c.MaxPriorityFramesPerStream, 100)
	defInt(&c.MaxWindowUpdatesPerDataFrame, 10)
	defInt(&c.PrematureResetTotalStreams, 500)
	if c.PrematureResetMinLifetime == 0 {
		c.PrematureResetMinLifetime = time.Second
	}
	if c.ShutdownPingTimeout == 0 {
		c.ShutdownPingTimeout = time.Second
	}
	return c
}

const (
	maxWindow        = 1<<31 - 1
	defaultWindow    = 65535
	defaultFrameSize = 16384
	// maxOutBuffered is how many bytes of DATA may wait in the connection's write buffer
	// before writers block until it is written: flow control bounds what the peer lets us
	// send, this bounds what a peer that grants windows but does not read costs us.
	maxOutBuffered = 1 << 20
	// maxKeptBuffer is the largest write buffer a connection keeps between bursts.
	maxKeptBuffer = 64 << 10
)
