package http2

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// inlineHandler answers on the reading goroutine, so that a fuzz run exercises the write
// path without goroutines outliving it.
type inlineHandler struct{}

func (inlineHandler) OnHeaders(s *Stream, h *Header, end bool) {
	if end {
		s.WriteHeaders(&Header{Status: 200}, false)
		s.WriteData([]byte("ok"), true)
	}
}
func (inlineHandler) OnData(s *Stream, p []byte, end bool) {
	s.Consume(len(p))
	if end {
		s.WriteHeaders(&Header{Status: 200}, true)
	}
}
func (inlineHandler) OnTrailers(s *Stream, h *Header) { s.WriteHeaders(&Header{Status: 204}, true) }
func (inlineHandler) OnReset(s *Stream, code ErrCode) {}

func fuzzSeeds() [][]byte {
	var seeds [][]byte
	frames := func(write func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer)) {
		var out, hb bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		write(fr, hpack.NewEncoder(&hb), &hb)
		seeds = append(seeds, out.Bytes())
	}
	block := func(enc *hpack.Encoder, buf *bytes.Buffer, kv ...string) []byte {
		buf.Reset()
		for i := 0; i < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	frames(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(enc, buf, getFields...), EndStream: true, EndHeaders: true})
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer) {
		b := block(enc, buf, ":method", "POST", ":scheme", "http", ":path", "/", "content-length", "3")
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:3]})
		fr.WriteContinuation(1, true, b[3:])
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteWindowUpdate(1, 100)
		fr.WriteData(1, true, []byte("c"))
		fr.WritePing(false, [8]byte{1})
	})
	frames(func(fr *http2.Framer, enc *hpack.Encoder, buf *bytes.Buffer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(enc, buf, getFields...)[:5], EndHeaders: true})
		fr.WriteData(3, false, []byte("x"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(enc, buf, "x-t", "1"), EndStream: true, EndHeaders: true})
		fr.WriteRSTStream(3, ErrCodeCancel)
		fr.WritePriority(5, http2.PriorityParam{StreamDep: 3})
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteGoAway(0, ErrCodeNo, nil)
	})
	return seeds
}

// FuzzServerFrames feeds arbitrary frames to a server connection after a valid preface: it
// must neither panic nor hang, and ends when the input does.
func FuzzServerFrames(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		c := NewServerConn(server, Config{MaxHeaderListSize: 4096, MaxConcurrentStreams: 8}, inlineHandler{})
		go io.Copy(io.Discard, client)
		go func() {
			var settings bytes.Buffer
			http2.NewFramer(&settings, nil).WriteSettings()
			client.Write([]byte(ClientPreface))
			client.Write(settings.Bytes())
			client.Write(in)
			client.Close()
		}()
		done := make(chan struct{})
		go func() { c.Serve(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not end with its input")
		}
	})
}

// FuzzHeaderBlock decodes arbitrary header blocks as requests: whatever is accepted is a
// request RFC 9113 allows.
func FuzzHeaderBlock(f *testing.F) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, kv := range [][]string{
		getFields,
		append(getFields[:8:8], "content-length", "10", "cookie", "a=b"),
		{":method", "CONNECT", ":authority", "a:443"},
		{":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "a", ":path", "/"},
	} {
		buf.Reset()
		for i := 0; i < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		f.Add(append([]byte(nil), buf.Bytes()...), true)
	}
	f.Fuzz(func(t *testing.T, block []byte, end bool) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c := newConn(a, Config{EnableConnectProtocol: true, MaxHeaderListSize: 8192}, true)
		var h Header
		c.block.start(1, end, kindRequest, &h)
		if _, err := c.dec.Write(block); err != nil {
			return
		}
		if err := c.dec.Close(); err != nil {
			return
		}
		if !c.block.finish() || c.block.tooLarge {
			return
		}
		if h.Method == "" {
			t.Fatal("accepted without :method")
		}
		if h.Method != "CONNECT" && (h.Path == "" || h.Scheme == "") {
			t.Fatalf("accepted %s without :path or :scheme", h.Method)
		}
		for _, f := range h.Fields {
			if f.Name != strings.ToLower(f.Name) || connectionSpecific(f.Name) || strings.HasPrefix(f.Name, ":") {
				t.Fatalf("accepted field %q", f.Name)
			}
			if strings.ContainsAny(f.Value, "\r\n\x00") {
				t.Fatalf("accepted value %q", f.Value)
			}
		}
		if end && h.ContentLength > 0 {
			t.Fatal("accepted content-length with END_STREAM")
		}
	})
}
