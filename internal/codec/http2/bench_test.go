package http2

import (
	"net/http"
	"sync"
	"testing"

	"golang.org/x/net/http2/hpack"
)

var benchBody = make([]byte, 100)

// benchServer answers every request with 100 bytes, from the reading goroutine (inline) or
// from a goroutine per request, as a connection manager running filters does.
type benchServer struct{ async bool }

var benchRespHeader = Header{Status: 200, Fields: []hpack.HeaderField{{Name: "content-type", Value: "text/plain"}}}

func (b benchServer) OnHeaders(s *Stream, h *Header, end bool) {
	if !end {
		return
	}
	if b.async {
		go b.respond(s)
		return
	}
	b.respond(s)
}
func (benchServer) respond(s *Stream) {
	h := benchRespHeader
	s.WriteHeaders(&h, false)
	s.WriteData(benchBody, true)
}
func (benchServer) OnData(s *Stream, p []byte, end bool) { s.Consume(len(p)) }
func (benchServer) OnTrailers(s *Stream, h *Header)      {}
func (benchServer) OnReset(s *Stream, code ErrCode)      {}

// benchClient is a reusable response sink.
type benchClient struct {
	done chan struct{}
	n    int
}

func (r *benchClient) OnHeaders(s *Stream, h *Header, end bool) {
	if end {
		r.done <- struct{}{}
	}
}
func (r *benchClient) OnData(s *Stream, p []byte, end bool) {
	r.n += len(p)
	s.Consume(len(p))
	if end {
		r.done <- struct{}{}
	}
}
func (r *benchClient) OnTrailers(s *Stream, h *Header) { r.done <- struct{}{} }
func (r *benchClient) OnReset(s *Stream, code ErrCode) { r.done <- struct{}{} }

var benchReq = Header{Method: "GET", Scheme: "http", Authority: "bench", Path: "/hello",
	Fields: []hpack.HeaderField{{Name: "user-agent", Value: "bench"}, {Name: "accept", Value: "*/*"}}}

func benchRoundTrips(b *testing.B, addr string, streams int) *Conn {
	c := dialClient(b, addr, Config{})
	sinks := make([]*benchClient, streams)
	for i := range sinks {
		sinks[i] = &benchClient{done: make(chan struct{}, 1)}
	}
	one := func(r *benchClient) {
		h := benchReq
		if _, err := c.NewStream(&h, true, r); err != nil {
			b.Fatal(err)
		}
		<-r.done
	}
	one(sinks[0]) // SETTINGS exchanged, HPACK tables warm
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		n := b.N / streams
		if i < b.N%streams {
			n++
		}
		wg.Add(1)
		go func(r *benchClient) {
			defer wg.Done()
			for j := 0; j < n; j++ {
				one(r)
			}
		}(sinks[i])
	}
	wg.Wait()
	b.StopTimer()
	return c
}

// BenchmarkRoundTrip is one GET and its 100-byte response at a time on one connection, the
// codec on both ends; allocations count both ends.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name    string
		async   bool
		streams int
	}{
		{name: "inline", streams: 1},
		{name: "goroutine", async: true, streams: 1},
		{name: "inline/10streams", streams: 10},
		{name: "goroutine/10streams", async: true, streams: 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := newTestServer(b, Config{}, benchServer{async: bc.async})
			benchRoundTrips(b, ts.addr, bc.streams)
			st := ts.conn(b, 0).Stats()
			b.ReportMetric(float64(st.Writes)/float64(st.StreamsOpened), "writes/resp")
		})
	}
}

// BenchmarkRoundTripNetHTTPServer is the same exchange with net/http's HTTP/2 server (the
// one the connection manager uses today) in place of ours.
func BenchmarkRoundTripNetHTTPServer(b *testing.B) {
	for _, streams := range []int{1, 10} {
		name := "1stream"
		if streams == 10 {
			name = "10streams"
		}
		b.Run(name, func(b *testing.B) {
			addr := netHTTPServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write(benchBody)
			}))
			benchRoundTrips(b, addr, streams)
		})
	}
}
