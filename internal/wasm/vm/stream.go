package vm

import (
	"context"

	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
)

// Action is what the plugin decided for the stream after a callback.
type Action uint8

// Actions.
const (
	// ActionContinue: go on to the next filter.
	ActionContinue Action = iota
	// ActionPause: stop iteration (headers) or keep buffering (a body) until more data
	// or the end of the stream.
	ActionPause
	// ActionRespond: the plugin sent a local response (Stream.Local()); stop and send it.
	ActionRespond
	// ActionFail: the instance trapped or overran its deadline (Stream.Err()); the adapter
	// answers 500, or passes the stream on if the plugin fails open.
	ActionFail
)

var actionNames = [...]string{"continue", "pause", "respond", "fail"}

func (a Action) String() string { return actionNames[a] }

// Stream is one HTTP stream (or TCP connection) holding one instance of a plugin. Its
// methods are called from the stream's goroutine, in stream order. Close gives the instance
// back.
type Stream struct {
	abi.Stream
	p    *Plugin
	inst *abi.Instance
	err  error
}

// NewStream takes an instance for a new stream and creates the stream's context in it. ctx
// bounds waiting for an instance and the plugin's HTTP calls.
func (p *Plugin) NewStream(ctx context.Context) (*Stream, error) {
	inst, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	s := p.streams.Get().(*Stream)
	s.p, s.inst = p, inst
	s.Stream.Context = ctx
	if err := inst.Bind(&s.Stream); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Err is why the stream failed (ActionFail), or nil.
func (s *Stream) Err() error { return s.err }

// Local returns the plugin's local response (valid after ActionRespond, until Close).
func (s *Stream) Local() *abi.LocalResponse { return &s.Stream.Local }

func (s *Stream) outcome(a abi.Action, err error) Action {
	switch {
	case err != nil:
		s.err = err
		return ActionFail
	case s.Stream.Local.Sent:
		// A local response ends the stream whatever the callback returned (Higress: a
		// local reply followed by Continue stops the chain).
		return ActionRespond
	case a == abi.ActionContinue || a == abi.ActionContinueAndEndStream:
		return ActionContinue
	default:
		return ActionPause
	}
}

func (s *Stream) failed() bool { return s.err != nil }

// OnRequestHeaders runs the plugin on the request headers. h is the stream's request map
// for the rest of the stream (the plugin may read it again from later callbacks).
func (s *Stream) OnRequestHeaders(h abi.HeaderMap, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.RequestHeaders = h
	return s.outcome(s.inst.OnRequestHeaders(h.Len(), end))
}

// OnRequestBody runs the plugin on the request body buffered so far; the plugin may rewrite
// *body.
func (s *Stream) OnRequestBody(body *[]byte, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.RequestBody = body
	return s.outcome(s.inst.OnRequestBody(len(*body), end))
}

// OnRequestTrailers runs the plugin on the request trailers.
func (s *Stream) OnRequestTrailers(t abi.HeaderMap) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.RequestTrailers = t
	return s.outcome(s.inst.OnRequestTrailers(t.Len()))
}

// OnResponseHeaders runs the plugin on the response headers.
func (s *Stream) OnResponseHeaders(h abi.HeaderMap, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.ResponseHeaders = h
	return s.outcome(s.inst.OnResponseHeaders(h.Len(), end))
}

// OnResponseBody runs the plugin on the response body buffered so far.
func (s *Stream) OnResponseBody(body *[]byte, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.ResponseBody = body
	return s.outcome(s.inst.OnResponseBody(len(*body), end))
}

// OnResponseTrailers runs the plugin on the response trailers.
func (s *Stream) OnResponseTrailers(t abi.HeaderMap) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.ResponseTrailers = t
	return s.outcome(s.inst.OnResponseTrailers(t.Len()))
}

// OnNewConnection runs the plugin on a new TCP connection. With OnDownstreamData and
// OnUpstreamData it makes the TCP side; their data is the connection's pending bytes in that
// direction, which the plugin may rewrite.
func (s *Stream) OnNewConnection() Action {
	if s.failed() {
		return ActionFail
	}
	return s.outcome(s.inst.OnNewConnection())
}

// OnDownstreamData runs the plugin on bytes from the client.
func (s *Stream) OnDownstreamData(data *[]byte, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.RequestBody = data
	return s.outcome(s.inst.OnDownstreamData(len(*data), end))
}

// OnUpstreamData runs the plugin on bytes from the upstream.
func (s *Stream) OnUpstreamData(data *[]byte, end bool) Action {
	if s.failed() {
		return ActionFail
	}
	s.Stream.ResponseBody = data
	return s.outcome(s.inst.OnUpstreamData(len(*data), end))
}

// Close ends the stream's context (proxy_on_done, proxy_on_log, proxy_on_delete) and gives
// the instance back to the pool, or drops it if it broke. s must not be used afterwards.
func (s *Stream) Close() {
	if s.inst.Broken() == nil {
		if err := s.inst.Unbind(); err != nil && s.err == nil {
			s.err = err
		}
	}
	s.p.put(s.inst)
	p := s.p
	s.Stream.Reset()
	s.p, s.inst, s.err = nil, nil, nil
	p.streams.Put(s)
}
