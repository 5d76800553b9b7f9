package http2

import (
	"bufio"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestRapidReset sends HEADERS+RST_STREAM pairs (CVE-2023-44487): the connection is closed
// with GOAWAY ENHANCE_YOUR_CALM once half of at least PrematureResetTotalStreams streams
// were reset before their response, and pairs that arrive together never reach the handler.
func TestRapidReset(t *testing.T) {
	th := &testHandler{hold: true}
	ts := newTestServer(t, Config{}, th)
	rc := dialRaw(t, ts.addr)
	bw := bufio.NewWriter(rc.nc)
	fr := http2.NewFramer(bw, nil)
	block := rc.block(getFields...)
	pairs := 0
	for id := uint32(1); pairs < 2000; id += 2 {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
		fr.WriteRSTStream(id, ErrCodeCancel)
		pairs++
		if bw.Buffered() > 8<<10 {
			if err := bw.Flush(); err != nil {
				break // closed by the server
			}
		}
	}
	bw.Flush()
	g := rc.waitGoAway(ErrCodeEnhanceYourCalm)
	st := ts.conn(t, 0).Stats()
	t.Logf("GOAWAY after stream %d; premature resets %d of %d streams; handler saw %d", g.LastStreamID, st.PrematureResets, st.StreamsOpened, th.headers.Load())
	if st.StreamsOpened > 600 {
		t.Errorf("%d streams opened before GOAWAY", st.StreamsOpened)
	}
	if n := th.headers.Load(); n > int64(st.StreamsOpened)/4 {
		t.Errorf("handler saw %d of %d reset streams", n, st.StreamsOpened)
	}
}

// TestResetsWithinLimits keeps a connection whose resets are a minority.
func TestResetsWithinLimits(t *testing.T) {
	ts := newTestServer(t, Config{PrematureResetTotalStreams: 10}, &testHandler{})
	rc := dialRaw(t, ts.addr)
	for id := uint32(1); id < 80; id += 2 {
		rc.headers(id, true, getFields...)
		if id%6 == 1 {
			rc.fr.WriteRSTStream(id, ErrCodeCancel)
			continue
		}
		rc.waitResponse(id)
	}
	if st := ts.conn(t, 0).Stats(); st.GoAwaySent {
		t.Fatalf("GOAWAY %v with %d premature resets of %d", st.GoAwayCode, st.PrematureResets, st.StreamsOpened)
	}
}

// TestContinuationFlood sends a header block that never ends.
func TestContinuationFlood(t *testing.T) {
	tests := []struct {
		name  string
		chunk int
	}{
		{name: "large fragments", chunk: 1024},
		{name: "empty fragments", chunk: 0},
	}
	ts := newTestServer(t, Config{MaxHeaderListSize: 16 << 10}, &testHandler{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block(getFields...)})
			frag := make([]byte, tc.chunk)
			for i := range frag {
				frag[i] = 0x80 | 2 // indexed ":method: GET", over and over
			}
			go func() {
				for i := 0; i < 100000; i++ {
					if rc.fr.WriteContinuation(1, false, frag) != nil {
						return
					}
				}
			}()
			rc.waitGoAway(ErrCodeEnhanceYourCalm)
		})
	}
}

// TestHPACKBomb indexes one large field and references it many times: the decoded list far
// exceeds MaxHeaderListSize while the block stays small. The request gets 431, and the
// connection stays usable.
func TestHPACKBomb(t *testing.T) {
	th := &testHandler{}
	ts := newTestServer(t, Config{}, th)
	rc := dialRaw(t, ts.addr)
	var block []byte
	rc.buf.Reset()
	for i := 0; i < 8; i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: getFields[i], Value: getFields[i+1]})
	}
	big := make([]byte, 3000)
	for i := range big {
		big[i] = 'a'
	}
	rc.enc.WriteField(hpack.HeaderField{Name: "x-bomb", Value: string(big)})
	block = append(block, rc.buf.Bytes()...)
	for i := 0; i < 1000; i++ {
		block = append(block, 0x80|62) // the newest dynamic table entry: x-bomb
	}
	rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
	if got := rc.waitResponse(1); got != "431" {
		t.Fatalf("status %s, want 431", got)
	}
	rc.headers(3, true, getFields...)
	if got := rc.waitResponse(3); got != "200" {
		t.Fatalf("next request: status %s", got)
	}
	if n := th.headers.Load(); n != 1 {
		t.Fatalf("handler saw %d requests", n)
	}
}

// TestOutboundControlFlood sends PINGs or SETTINGS and never reads the acknowledgements:
// the connection is closed once MaxOutboundControlFrames are queued.
func TestOutboundControlFlood(t *testing.T) {
	tests := []struct {
		name  string
		frame func(fr *http2.Framer) error
	}{
		{name: "ping", frame: func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) }},
		{name: "settings", frame: func(fr *http2.Framer) error { return fr.WriteSettings() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Config{}, &testHandler{}, func(ts *testServer) {
				ts.onAccept = func(nc net.Conn) { nc.(*net.TCPConn).SetWriteBuffer(4096) }
			})
			d := net.Dialer{Control: nil}
			nc, err := d.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.(*net.TCPConn).SetReadBuffer(4096)
			bw := bufio.NewWriterSize(nc, 64<<10)
			bw.WriteString(ClientPreface)
			fr := http2.NewFramer(bw, nil)
			fr.WriteSettings()
			sent := 0
			for ; sent < 1_000_000; sent++ {
				if tc.frame(fr) != nil {
					break
				}
			}
			bw.Flush()
			c := ts.conn(t, 0)
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("connection still open after %d frames", sent)
			}
			if st := c.Stats(); st.OutboundControlFlood != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestOutboundFrameFlood opens streams and never reads their responses: once
// MaxOutboundFrames response frames wait for the socket, the connection is closed.
func TestOutboundFrameFlood(t *testing.T) {
	ts := newTestServer(t, Config{MaxOutboundFrames: 200}, &testHandler{}, func(ts *testServer) {
		ts.onAccept = func(nc net.Conn) { nc.(*net.TCPConn).SetWriteBuffer(4096) }
	})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.(*net.TCPConn).SetReadBuffer(4096)
	rc := &rawClient{t: t, nc: nc, fr: http2.NewFramer(nc, nil)}
	rc.enc = hpack.NewEncoder(&rc.buf)
	nc.Write([]byte(ClientPreface))
	rc.fr.WriteSettings()
	block := rc.block(getFields...)
	c := ts.conn(t, 0)
	closed := func() bool {
		select {
		case <-c.Done():
			return true
		default:
			return false
		}
	}
	for id := uint32(1); id < 200000 && !(id%64 == 1 && closed()); id += 2 {
		if rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil {
			break
		}
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection still open")
	}
	if st := c.Stats(); st.OutboundFlood != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEmptyFrameFlood sends DATA frames without payload or END_STREAM.
func TestEmptyFrameFlood(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{hold: true})
	rc := dialRaw(t, ts.addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	for i := 0; i < 10; i++ {
		rc.fr.WriteData(1, false, nil)
	}
	rc.waitGoAway(ErrCodeEnhanceYourCalm)
}

// TestPriorityFlood sends PRIORITY frames far beyond the streams opened.
func TestPriorityFlood(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{})
	rc := dialRaw(t, ts.addr)
	go func() {
		for i := 0; i < 10000; i++ {
			if rc.fr.WritePriority(uint32(2*i+1), http2.PriorityParam{StreamDep: 0, Weight: 1}) != nil {
				return
			}
		}
	}()
	rc.waitGoAway(ErrCodeEnhanceYourCalm)
}

// TestMaxConcurrentStreams refuses streams beyond the limit with REFUSED_STREAM.
func TestMaxConcurrentStreams(t *testing.T) {
	ts := newTestServer(t, Config{MaxConcurrentStreams: 2}, &testHandler{hold: true})
	rc := dialRaw(t, ts.addr)
	rc.headers(1, true, getFields...)
	rc.headers(3, true, getFields...)
	rc.headers(5, true, getFields...)
	rc.waitRST(5, ErrCodeRefusedStream)
}

// TestMaxRequestsPerConnection sends GOAWAY naming the last stream once the limit is hit.
func TestMaxRequestsPerConnection(t *testing.T) {
	ts := newTestServer(t, Config{MaxRequestsPerConnection: 2}, &testHandler{})
	rc := dialRaw(t, ts.addr)
	rc.headers(1, true, getFields...)
	rc.waitResponse(1)
	rc.headers(3, true, getFields...)
	g := rc.waitGoAway(ErrCodeNo)
	if g.LastStreamID != 3 {
		t.Fatalf("GOAWAY last stream %d", g.LastStreamID)
	}
	rc.waitResponse(3)
	rc.waitClosed()
}

// earlyReplier answers every request as soon as its headers arrive.
type earlyReplier struct{ testHandler }

func (h *earlyReplier) OnHeaders(s *Stream, hd *Header, end bool) {
	s.WriteHeaders(&Header{Status: 204}, true)
}
func (h *earlyReplier) OnData(s *Stream, p []byte, end bool) { s.Consume(len(p)) }

// TestGoAwayClosesAfterRequestEnds: after the final GOAWAY, the connection closes when its
// last stream ends, here with the request's END_STREAM after the response.
func TestGoAwayClosesAfterRequestEnds(t *testing.T) {
	ts := newTestServer(t, Config{MaxRequestsPerConnection: 1}, &earlyReplier{})
	rc := dialRaw(t, ts.addr)
	rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
	rc.wait("response", func(f http2.Frame) bool { _, ok := f.(*http2.MetaHeadersFrame); return ok })
	rc.fr.WriteData(1, true, []byte("late"))
	rc.waitClosed()
}

// idleReplier answers a stream idle timeout with 408, as a connection manager does.
type idleReplier struct{ testHandler }

func (h *idleReplier) OnStreamIdle(s *Stream) {
	go s.WriteHeaders(&Header{Status: 408}, true)
}

// TestStreamIdleTimeout resets (or, with an IdleHandler, answers) a stream without frames.
func TestStreamIdleTimeout(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		th := &testHandler{hold: true}
		ts := newTestServer(t, Config{StreamIdleTimeout: 50 * time.Millisecond}, th)
		rc := dialRaw(t, ts.addr)
		rc.headers(1, true, getFields...)
		rc.waitRST(1, ErrCodeCancel)
		for i := 0; i < 5000 && th.resets.Load() == 0; i++ {
			time.Sleep(time.Millisecond)
		}
		if th.resets.Load() != 1 {
			t.Fatalf("OnReset calls: %d", th.resets.Load())
		}
	})
	t.Run("hook", func(t *testing.T) {
		th := &idleReplier{testHandler{hold: true}}
		ts := newTestServer(t, Config{StreamIdleTimeout: 50 * time.Millisecond}, th)
		rc := dialRaw(t, ts.addr)
		rc.headers(1, true, getFields...)
		if got := rc.waitResponse(1); got != "408" {
			t.Fatalf("status %s", got)
		}
	})
}

// TestIdleTimeout closes a connection without streams.
func TestIdleTimeout(t *testing.T) {
	ts := newTestServer(t, Config{IdleTimeout: 50 * time.Millisecond}, &testHandler{})
	rc := dialRaw(t, ts.addr)
	rc.headers(1, true, getFields...)
	rc.waitResponse(1)
	rc.waitGoAway(ErrCodeNo)
	rc.waitClosed()
}

// TestGracefulShutdown runs the two-phase GOAWAY: a stream in flight when Shutdown starts
// completes, one opened after the second GOAWAY does not.
func TestGracefulShutdown(t *testing.T) {
	th := &testHandler{hold: true}
	ts := newTestServer(t, Config{ShutdownPingTimeout: time.Minute}, th)
	rc := dialRaw(t, ts.addr)
	rc.headers(1, true, getFields...)
	c := ts.conn(t, 0)
	for th.headers.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Shutdown()
	g := rc.waitGoAway(ErrCodeNo)
	if g.LastStreamID != 1<<31-1 {
		t.Fatalf("first GOAWAY names stream %d", g.LastStreamID)
	}
	p := rc.wait("PING", func(f http2.Frame) bool { _, ok := f.(*http2.PingFrame); return ok }).(*http2.PingFrame)
	rc.headers(3, true, getFields...) // still accepted: sent before the PING's answer
	rc.fr.WritePing(true, p.Data)
	g = rc.waitGoAway(ErrCodeNo)
	if g.LastStreamID != 3 {
		t.Fatalf("second GOAWAY names stream %d", g.LastStreamID)
	}
	rc.headers(5, true, getFields...)
	rc.waitRST(5, ErrCodeRefusedStream)
	for _, id := range []uint32{1, 3} {
		s := streamOf(t, c, id)
		echo(s, &request{h: Header{Method: "GET"}})
		rc.waitResponse(id)
	}
	rc.waitClosed()
}

func streamOf(t *testing.T, c *Conn, id uint32) *Stream {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	if s == nil {
		t.Fatalf("no stream %d", id)
	}
	return s
}
