package http2

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestMalformedRequests sends header blocks RFC 9113 §8 calls malformed: each is a stream
// error (RST_STREAM PROTOCOL_ERROR) and the connection goes on serving.
func TestMalformedRequests(t *testing.T) {
	th := &testHandler{}
	ts := newTestServer(t, Config{}, th)
	tests := []struct {
		name   string
		fields []string
	}{
		{name: "upper-case name", fields: append(getFields[:8:8], "X-Upper", "1")},
		{name: "connection header", fields: append(getFields[:8:8], "connection", "keep-alive")},
		{name: "transfer-encoding", fields: append(getFields[:8:8], "transfer-encoding", "chunked")},
		{name: "te not trailers", fields: append(getFields[:8:8], "te", "gzip")},
		{name: "pseudo after regular", fields: []string{":method", "GET", ":scheme", "http", "accept", "*/*", ":path", "/"}},
		{name: "duplicate path", fields: append(getFields[:8:8], ":path", "/again")},
		{name: "missing path", fields: []string{":method", "GET", ":scheme", "http", ":authority", "a"}},
		{name: "empty path", fields: []string{":method", "GET", ":scheme", "http", ":path", ""}},
		{name: "missing method", fields: []string{":scheme", "http", ":path", "/"}},
		{name: "response pseudo in request", fields: append(getFields[:8:8], ":status", "200")},
		{name: "unknown pseudo", fields: append(getFields[:8:8], ":foo", "bar")},
		{name: "connect with path", fields: []string{":method", "CONNECT", ":authority", "a:443", ":path", "/"}},
		{name: "connect without authority", fields: []string{":method", "CONNECT"}},
		{name: "protocol without setting", fields: []string{":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/ws"}},
		{name: "bad content-length", fields: append(getFields[:8:8], "content-length", "12a")},
		{name: "content-length on empty request", fields: append(getFields[:8:8], "content-length", "3")},
		{name: "newline in value", fields: append(getFields[:8:8], "x-a", "b\nc")},
	}
	rc := dialRaw(t, ts.addr)
	id := uint32(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc.t = t
			rc.headers(id, true, tc.fields...)
			rc.waitRST(id, ErrCodeProtocol)
			id += 2
			rc.headers(id, true, getFields...)
			if got := rc.waitResponse(id); got != "200" {
				t.Fatalf("next request: status %s", got)
			}
			id += 2
		})
	}
	if n := th.headers.Load(); n != int64(len(tests)) {
		t.Fatalf("handler saw %d requests, want only the %d valid ones", n, len(tests))
	}
}

// TestContentLengthMismatch checks DATA against content-length: more or fewer bytes than
// announced reset the stream.
func TestContentLengthMismatch(t *testing.T) {
	tests := []struct {
		name   string
		length string
		data   []string
	}{
		{name: "more", length: "3", data: []string{"ab", "cd"}},
		{name: "fewer", length: "5", data: []string{"ab"}},
	}
	th := &testHandler{}
	ts := newTestServer(t, Config{}, th)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/", "content-length", tc.length)
			for i, d := range tc.data {
				rc.fr.WriteData(1, i == len(tc.data)-1, []byte(d))
			}
			rc.waitRST(1, ErrCodeProtocol)
		})
	}
}

// TestConnectionErrors checks frames that end the connection with GOAWAY.
func TestConnectionErrors(t *testing.T) {
	tests := []struct {
		name string
		send func(rc *rawClient)
		want ErrCode
	}{
		{name: "data on idle stream", want: ErrCodeProtocol, send: func(rc *rawClient) {
			rc.fr.WriteData(5, true, []byte("x"))
		}},
		{name: "headers on even stream", want: ErrCodeProtocol, send: func(rc *rawClient) {
			rc.headers(2, true, getFields...)
		}},
		{name: "stream id going down", want: ErrCodeStreamClosed, send: func(rc *rawClient) {
			rc.headers(5, true, getFields...)
			rc.headers(3, true, getFields...)
		}},
		{name: "window overflow", want: ErrCodeFlowControl, send: func(rc *rawClient) {
			rc.fr.WriteWindowUpdate(0, 1<<31-1)
		}},
		{name: "continuation without headers", want: ErrCodeProtocol, send: func(rc *rawClient) {
			rc.fr.WriteContinuation(1, true, rc.block(getFields...))
		}},
		{name: "interleaved headers", want: ErrCodeProtocol, send: func(rc *rawClient) {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rc.block(getFields[:4]...)})
			rc.fr.WriteData(1, true, []byte("x"))
		}},
		{name: "push promise from client", want: ErrCodeProtocol, send: func(rc *rawClient) {
			rc.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: rc.block(getFields...), EndHeaders: true})
		}},
		{name: "frame too large", want: ErrCodeFrameSize, send: func(rc *rawClient) {
			rc.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/")
			rc.fr.WriteData(1, true, make([]byte, 20000))
		}},
		{name: "bad hpack", want: ErrCodeCompression, send: func(rc *rawClient) {
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0xff, 0xff, 0xff, 0xff}, EndHeaders: true, EndStream: true})
		}},
		{name: "table size above our setting", want: ErrCodeCompression, send: func(rc *rawClient) {
			// A dynamic table size update to 1 MiB (RFC 7541 §6.3).
			rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x3f, 0xe1, 0xff, 0x3f}, EndHeaders: true, EndStream: true})
		}},
		{name: "settings bad initial window", want: ErrCodeFlowControl, send: func(rc *rawClient) {
			rc.fr.WriteRawFrame(http2.FrameSettings, 0, 0, []byte{0, 4, 0x80, 0, 0, 0})
		}},
	}
	ts := newTestServer(t, Config{}, &testHandler{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, ts.addr)
			tc.send(rc)
			rc.waitGoAway(tc.want)
			rc.waitClosed()
		})
	}
}

// TestBadPreface closes a connection that does not start with the client preface.
func TestBadPreface(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatal(err)
	}
}

// TestExtendedConnect opens a WebSocket-style tunnel with RFC 8441's extended CONNECT and
// exchanges data both ways on the stream.
func TestExtendedConnect(t *testing.T) {
	tunnel := &tunnelHandler{}
	ts := newTestServer(t, Config{EnableConnectProtocol: true}, tunnel)
	rc := dialRaw(t, ts.addr)
	sf := rc.wait("SETTINGS", func(f http2.Frame) bool {
		s, ok := f.(*http2.SettingsFrame)
		return ok && !s.IsAck()
	}).(*http2.SettingsFrame)
	if v, ok := sf.Value(http2.SettingEnableConnectProtocol); !ok || v != 1 {
		t.Fatalf("SETTINGS_ENABLE_CONNECT_PROTOCOL = %d, %v", v, ok)
	}
	rc.headers(1, false, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/chat", "sec-websocket-version", "13")
	if got := rc.waitResponse(1); got != "200" {
		t.Fatalf("status %s", got)
	}
	rc.fr.WriteData(1, false, []byte("frame"))
	d := rc.wait("DATA", func(f http2.Frame) bool { _, ok := f.(*http2.DataFrame); return ok }).(*http2.DataFrame)
	if string(d.Data()) != "frame" {
		t.Fatalf("echoed %q", d.Data())
	}
	if tunnel.protocol != "websocket" {
		t.Fatalf(":protocol %q", tunnel.protocol)
	}
}

// tunnelHandler accepts a CONNECT and echoes the stream's data.
type tunnelHandler struct{ protocol string }

func (th *tunnelHandler) OnHeaders(s *Stream, h *Header, end bool) {
	th.protocol = h.Protocol
	s.WriteHeaders(&Header{Status: 200}, false)
	s.Flush()
}
func (th *tunnelHandler) OnData(s *Stream, p []byte, end bool) {
	s.Consume(len(p))
	s.WriteData(p, end)
}
func (th *tunnelHandler) OnTrailers(s *Stream, h *Header) {}
func (th *tunnelHandler) OnReset(s *Stream, code ErrCode) {}
