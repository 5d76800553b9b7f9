package abi

import (
	"context"
	"time"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/header"
)

// Stream is what one HTTP stream (or TCP connection) shows the plugin while it holds an
// instance. The adapter fills the maps and buffers before each callback; the plugin's
// answers (a local response, a resume, a route cache reset) are read back after it.
type Stream struct {
	ID uint32 // the plugin's context id, set by Bind

	RequestHeaders, RequestTrailers   HeaderMap
	ResponseHeaders, ResponseTrailers HeaderMap
	RequestBody, ResponseBody         *[]byte // also downstream / upstream data for TCP
	Properties                        Properties

	// Context bounds the HTTP calls the plugin makes from this stream.
	Context context.Context

	Local           LocalResponse
	ClearRouteCache bool
	Done            bool // the plugin called proxy_done

	// RequestHeadersChanged: the plugin changed the request headers. Envoy selects the
	// route again then, unless the plugin set clear_route_cache to "off" (KeepRoute).
	RequestHeadersChanged bool
	// Higress's host properties, set with proxy_set_property (see hostProperty).
	KeepRoute          bool
	DecoderBufferLimit int // set_decoder_buffer_limit; 0: unset
	EncoderBufferLimit int // set_encoder_buffer_limit; 0: unset

	continued   bool
	closed      [4]bool
	filterState map[string][]byte
	arena       []byte
}

// LocalResponse is a response the plugin asked the host to send instead of going on.
type LocalResponse struct {
	Sent       bool
	Status     int
	Details    string
	Body       []byte
	Headers    []header.Field
	GRPCStatus int32 // -1: none
}

// Reset makes s ready for another stream, keeping its storage.
func (s *Stream) Reset() {
	arena := s.arena[:0]
	hdrs := s.Local.Headers[:0]
	body := s.Local.Body[:0]
	fs := s.filterState
	clear(fs)
	*s = Stream{arena: arena, filterState: fs}
	s.Local.Headers = hdrs
	s.Local.Body = body
}

// Closed reports whether the plugin asked to close (reset) the given side.
func (s *Stream) Closed(t StreamType) bool { return int(t) < len(s.closed) && s.closed[t] }

func (s *Stream) resumed() bool { return s.continued || s.Local.Sent }

// keep copies b into the stream's arena and returns it as a string that stays valid until
// the stream is reset. Header values the plugin sets end up in the adapter's header map,
// which the codec reads after the callback: they must outlive guest memory, and an arena
// costs no allocation once it has grown to a stream's working size.
func (s *Stream) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(s.arena)-len(s.arena) < len(b) {
		// Strings handed out before keep pointing at the old chunk, which the collector
		// keeps alive as long as they do.
		s.arena = make([]byte, 0, max(4096, 2*cap(s.arena), len(b)))
	}
	off := len(s.arena)
	s.arena = append(s.arena, b...)
	return unsafe.String(&s.arena[off], len(b))
}

// keepLower is keep for header names, which Nuncio's maps hold lower-case.
func (s *Stream) keepLower(b []byte) string {
	str := s.keep(b)
	if len(str) > 0 {
		buf := s.arena[len(s.arena)-len(b):]
		for j, c := range buf {
			if 'A' <= c && c <= 'Z' {
				buf[j] = c + ('a' - 'A')
			}
		}
	}
	return str
}

// Bind attaches s to the instance as a new context under the root context, and runs
// proxy_on_context_create.
func (i *Instance) Bind(s *Stream) error {
	s.ID = i.NewContextID()
	i.stream = s
	i.effective = s.ID
	return i.OnContextCreate(s.ID, i.RootID)
}

// Unbind runs the end of the stream's context (done, log, delete) and detaches it.
func (i *Instance) Unbind() error {
	s := i.stream
	if s == nil {
		return nil
	}
	err := i.OnDone(s.ID)
	if err == nil {
		err = i.OnLog(s.ID)
	}
	if err == nil {
		err = i.OnDelete(s.ID)
	}
	i.stream = nil
	i.effective = i.RootID
	i.callouts = i.callouts[:0]
	return err
}

// Stream returns the bound stream, or nil.
func (i *Instance) Stream() *Stream { return i.stream }

// afterCallback sends the HTTP calls the plugin made during the callback that just ended and
// delivers each response through proxy_on_http_call_response, one at a time (calls made from
// a response callback are sent in turn).
func (i *Instance) afterCallback(err error) error {
	if err != nil {
		return err
	}
	for len(i.callouts) > 0 {
		co := i.callouts[0]
		i.callouts = i.callouts[1:]
		ctx := context.Background()
		if i.stream != nil && i.stream.Context != nil {
			ctx = i.stream.Context
		}
		var resp *HTTPCallResponse
		if i.Info.Caller != nil {
			cctx, cancel := context.WithTimeout(ctx, co.req.Timeout)
			resp, _ = i.Info.Caller.HTTPCall(cctx, &co.req)
			cancel()
		}
		if resp == nil {
			resp = &HTTPCallResponse{}
		}
		i.callResp = resp
		// The response goes to the root context, as Envoy's http_call is the root's: the
		// plugin switches to the stream with proxy_set_effective_context.
		i.effective = i.RootID
		_, err := i.invoke(i.cb.httpCallResponse, uint64(i.RootID), uint64(co.token),
			uint64(len(resp.Headers)), uint64(len(resp.Body)), uint64(len(resp.Trailers)))
		i.callResp = nil
		if err != nil {
			return err
		}
	}
	i.callouts = i.callouts[:0]
	return nil
}

// PendingCallouts reports how many HTTP calls wait to be sent.
func (i *Instance) PendingCallouts() int { return len(i.callouts) }

func millis(ms uint32) time.Duration { return time.Duration(ms) * time.Millisecond }

// hostProperty acts on the properties Higress's plugins set to steer the host rather than to
// store a value: set_decoder_buffer_limit and set_encoder_buffer_limit (a decimal byte count:
// how much of the request or response body the host may buffer for this stream) and
// clear_route_cache ("off": changing the request headers does not select the route again).
// It reports false for a value it cannot take. Every property is also kept as filter state,
// so the plugin reads back what it set.
func (s *Stream) hostProperty(path string, value []byte) bool {
	switch path {
	case "set_decoder_buffer_limit", "set_encoder_buffer_limit":
		n, ok := header.ParseDecimal(string(value))
		if !ok || n <= 0 || n > 1<<40 {
			return false
		}
		if path == "set_decoder_buffer_limit" {
			s.DecoderBufferLimit = int(n)
		} else {
			s.EncoderBufferLimit = int(n)
		}
	case "clear_route_cache":
		s.KeepRoute = string(value) == "off"
	}
	return true
}
