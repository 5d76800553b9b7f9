package wasm

import (
	"bytes"
	"context"
	"strconv"
	"sync"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
)

// failDetails is Envoy's response code details for a stream whose plugin failed.
const failDetails = "wasm_fail_stream"

var filterPool = sync.Pool{New: func() any { return new(filter) }}

// filter is one stream's view of the plugin: the instance it holds (vm.Stream) and the state
// that maps proxy-wasm's Continue/Pause onto the filter contract.
//
// proxy-wasm lets a plugin pause a stream and resume it later from another callback (an
// http_call's response). Here the host delivers an http_call's response inside the callback
// that made the call (the filter contract lets a filter block on Stream.Ctx), so a plugin
// that pauses for a call has resumed or answered by the time its callback returns. What
// remains of Pause is waiting for more of the body: a Pause on headers (before the end of the
// stream) holds them until the body is complete (StopAndBuffer), and a Pause on a body chunk
// buffers until the end, when the plugin sees the whole body. A Pause that nothing could
// resume (at the end of the stream) continues.
type filter struct {
	httpfilter.PassThrough

	// The filter is the context of the plugin's calls: the stream's Ctx, plus the cluster
	// resolver (Value), so passing it to the host allocates nothing.
	context.Context
	clusters func(string) *cluster.Ref

	plug     *plugin
	failOpen bool
	vs       *vm.Stream
	attrs    abi.Attributes

	body     []byte // the body the plugin sees and may rewrite
	reqHeld  bool   // the request headers wait for the whole body (StopAndBuffer)
	respHeld bool
	replying bool // the plugin's local reply is going through the response filters
	bypass   bool // the plugin failed and the policy is fail-open
}

// Value implements context.Context.
func (f *filter) Value(key any) any {
	if _, ok := key.(clustersKey); ok {
		return f.clusters
	}
	return f.Context.Value(key)
}

// NewFilter implements httpfilter.Config. A per-route Wasm config runs its plugin instead.
func (c *Config) NewFilter(s *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	f := filterPool.Get().(*filter)
	run := c
	if o, ok := perRoute.(*Config); ok {
		run = o
	}
	f.Context = s.Ctx
	if f.Context == nil {
		f.Context = context.Background()
	}
	f.clusters = c.clusters
	f.plug, f.failOpen = run.plug, run.failOpen
	return f
}

// begin returns the stream's plugin stream, taking an instance on first use.
func (f *filter) begin(s *httpfilter.Stream) (*vm.Stream, error) {
	if f.vs == nil {
		vs, err := f.plug.vm.NewStream(f)
		if err != nil {
			return nil, err
		}
		f.vs = vs
		vs.Properties = &f.attrs
	}
	a := &f.attrs
	a.Request = abi.HeadersOf(&s.Request)
	if s.Response.Status != 0 {
		a.Response = abi.HeadersOf(&s.Response)
		a.ResponseCode = s.Response.Status
	}
	a.Source, a.Destination = s.Downstream.RemoteAddr, s.Downstream.LocalAddr
	a.Protocol = s.Downstream.Protocol
	a.Start = s.Info.Start
	a.RouteName = s.Info.RouteName
	if a.RouteName == "" && s.Route != nil {
		a.RouteName = s.Route.RouteName()
	}
	a.ClusterName = s.Info.UpstreamCluster
	a.Extra = connProps{s}
	return f.vs, nil
}

// skip reports whether the plugin is out of this stream's way.
func (f *filter) skip() bool { return f.bypass || f.replying }

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	return f.headers(s, h, end, true)
}

// OnRequestBody implements httpfilter.RequestBodyFilter.
func (f *filter) OnRequestBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	return f.bodyChunk(s, chunk, end, true)
}

// OnRequestTrailers implements httpfilter.RequestTrailersFilter.
func (f *filter) OnRequestTrailers(s *httpfilter.Stream, t *header.Map) httpfilter.Status {
	return f.trailers(s, t, true)
}

// OnResponseHeaders implements httpfilter.ResponseHeadersFilter.
func (f *filter) OnResponseHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	return f.headers(s, h, end, false)
}

// OnResponseBody implements httpfilter.ResponseBodyFilter.
func (f *filter) OnResponseBody(s *httpfilter.Stream, chunk []byte, end bool) httpfilter.Status {
	return f.bodyChunk(s, chunk, end, false)
}

// OnResponseTrailers implements httpfilter.ResponseTrailersFilter.
func (f *filter) OnResponseTrailers(s *httpfilter.Stream, t *header.Map) httpfilter.Status {
	return f.trailers(s, t, false)
}

// held is whether the plugin paused on the request's (or the response's) headers, so that
// they wait for the body.
func (f *filter) held(request bool) *bool {
	if request {
		return &f.reqHeld
	}
	return &f.respHeld
}

// headers runs the plugin's request or response headers callback.
func (f *filter) headers(s *httpfilter.Stream, h *header.Map, end, request bool) httpfilter.Status {
	if f.skip() {
		return httpfilter.Continue
	}
	vs, err := f.begin(s)
	if err != nil {
		return f.fail(s)
	}
	var a vm.Action
	if request {
		a = vs.OnRequestHeaders(abi.HeadersOf(h), end)
	} else {
		a = vs.OnResponseHeaders(abi.HeadersOf(h), end)
	}
	f.effects(s, request)
	if a == vm.ActionPause && !end {
		*f.held(request) = true
		return httpfilter.StopAndBuffer
	}
	return f.after(s, a)
}

// bodyChunk runs the plugin's request or response body callback on a copy of the chunk it
// may rewrite.
func (f *filter) bodyChunk(s *httpfilter.Stream, chunk []byte, end, request bool) httpfilter.Status {
	if f.skip() {
		return httpfilter.Continue
	}
	vs, err := f.begin(s)
	if err != nil {
		return f.fail(s)
	}
	f.body = append(f.body[:0], chunk...)
	var a vm.Action
	msg := &s.Response
	if request {
		a = vs.OnRequestBody(&f.body, end)
		msg = &s.Request
	} else {
		a = vs.OnResponseBody(&f.body, end)
	}
	f.effects(s, request)
	if a == vm.ActionPause && !end {
		return httpfilter.StopAndBuffer
	}
	held := f.held(request)
	if a == vm.ActionPause || a == vm.ActionContinue {
		if !f.rewrite(s, msg, chunk, *held) {
			return f.fail(s)
		}
	}
	if end {
		*held = false
	}
	return f.after(s, a)
}

// trailers runs the plugin's request or response trailers callback.
func (f *filter) trailers(s *httpfilter.Stream, t *header.Map, request bool) httpfilter.Status {
	if f.skip() {
		return httpfilter.Continue
	}
	vs, err := f.begin(s)
	if err != nil {
		return f.fail(s)
	}
	var a vm.Action
	if request {
		a = vs.OnRequestTrailers(abi.HeadersOf(t))
	} else {
		a = vs.OnResponseTrailers(abi.HeadersOf(t))
	}
	f.effects(s, request)
	return f.after(s, a)
}

// OnStreamDone implements httpfilter.StreamDoneFilter: the plugin's done, log and delete
// run, and its instance goes back to the pool.
func (f *filter) OnStreamDone(s *httpfilter.Stream) {
	if f.vs != nil {
		f.begin(s) // on_log reads the final response
		f.vs.Close()
	}
	*f = filter{body: f.body[:0]}
	filterPool.Put(f)
}

// effects applies what the plugin asked of the stream during a callback: buffer limits
// (Higress's set_decoder_buffer_limit and set_encoder_buffer_limit), and, while the request
// is on its way, a new route selection after proxy_clear_route_cache or a change of the
// request headers (as Envoy does, unless the plugin set clear_route_cache to "off").
func (f *filter) effects(s *httpfilter.Stream, request bool) {
	vs := f.vs
	if vs.DecoderBufferLimit > 0 {
		s.BufferLimit, vs.DecoderBufferLimit = vs.DecoderBufferLimit, 0
	}
	if vs.EncoderBufferLimit > 0 {
		s.ResponseBufferLimit, vs.EncoderBufferLimit = vs.EncoderBufferLimit, 0
	}
	clear := vs.ClearRouteCache || vs.RequestHeadersChanged && !vs.KeepRoute
	vs.ClearRouteCache, vs.RequestHeadersChanged = false, false
	if clear && request && !vs.Local().Sent {
		s.ClearRouteCache()
	}
}

// rewrite passes on the body the plugin left in f.body when it differs from chunk. When the
// body's headers have gone on with a content-length, a body of another length cannot follow
// them: that fails the stream (the plugin should have removed the header, as the SDKs'
// examples do). Held headers get the new length.
func (f *filter) rewrite(s *httpfilter.Stream, h *header.Map, chunk []byte, held bool) bool {
	if bytes.Equal(f.body, chunk) {
		return true
	}
	if len(f.body) != len(chunk) && h.Has("content-length") {
		if !held {
			return false
		}
		h.Set("content-length", strconv.Itoa(len(f.body)-len(chunk)+contentLength(h)))
	}
	s.ReplaceBody(f.body)
	return true
}

func contentLength(h *header.Map) int {
	n, _ := header.ParseDecimal(h.Value("content-length"))
	return int(n)
}

// after maps the plugin's decision to a filter status.
func (f *filter) after(s *httpfilter.Stream, a vm.Action) httpfilter.Status {
	switch a {
	case vm.ActionRespond:
		f.respond(s)
		return httpfilter.Stop
	case vm.ActionFail:
		return f.fail(s)
	}
	return httpfilter.Continue
}

// fail applies the failure policy: the stream passes the plugin by (fail-open) or gets
// Envoy's 503 with details wasm_fail_stream.
func (f *filter) fail(s *httpfilter.Stream) httpfilter.Status {
	if f.failOpen {
		f.bypass = true
		return httpfilter.Continue
	}
	f.bypass = true
	s.SendLocalReply(503, "", 0, failDetails)
	return httpfilter.Stop
}

// respond sends the plugin's local response (proxy_send_local_response) with its headers.
func (f *filter) respond(s *httpfilter.Stream) {
	lr := f.vs.Local()
	details := lr.Details
	if details == "" {
		details = "wasm_local_reply"
	}
	f.replying = true
	if s.ResponseStarted() {
		s.SendLocalReply(lr.Status, "", 0, details)
		return
	}
	s.Info.ResponseDetails = details
	r := &s.Response
	r.Reset()
	s.ResponseTrailers.Reset()
	r.Status = lr.Status
	for _, h := range lr.Headers {
		if h.Name == "content-length" || h.Name == "transfer-encoding" || len(h.Name) > 0 && h.Name[0] == ':' {
			continue
		}
		r.Add(h.Name, h.Value)
	}
	if lr.GRPCStatus >= 0 && !r.Has("grpc-status") {
		r.Set("grpc-status", strconv.Itoa(int(lr.GRPCStatus)))
	}
	if len(lr.Body) > 0 && !r.Has("content-type") {
		r.Set("content-type", "text/plain")
	}
	r.Set("content-length", strconv.Itoa(len(lr.Body)))
	if len(lr.Body) == 0 {
		s.EncodeHeaders(true)
		return
	}
	s.EncodeHeaders(false)
	s.EncodeBody(lr.Body, true)
}

var (
	_ httpfilter.Filter = (*filter)(nil)
	_ context.Context   = (*filter)(nil)
)
