package abi

import "github.com/tetratelabs/wazero/api"

// callback is an exported function and its arity: 0.1.0 header callbacks take no
// end_of_stream flag, so arguments past the arity are dropped.
type callback struct {
	fn    api.Function
	arity int
}

type callbacks struct {
	contextCreate, vmStart, configure, done, log, delete, tick, queueReady      callback
	requestHeaders, requestBody, requestTrailers, requestMetadata               callback
	responseHeaders, responseBody, responseTrailers, responseMetadata           callback
	httpCallResponse                                                            callback
	newConnection, downstreamData, downstreamClose, upstreamData, upstreamClose callback
	foreignFunction                                                             callback
}

func (c *callbacks) bind(mod api.Module) {
	for _, b := range [...]struct {
		cb   *callback
		name string
	}{
		{&c.contextCreate, "proxy_on_context_create"},
		{&c.vmStart, "proxy_on_vm_start"},
		{&c.configure, "proxy_on_configure"},
		{&c.done, "proxy_on_done"},
		{&c.log, "proxy_on_log"},
		{&c.delete, "proxy_on_delete"},
		{&c.tick, "proxy_on_tick"},
		{&c.queueReady, "proxy_on_queue_ready"},
		{&c.requestHeaders, "proxy_on_request_headers"},
		{&c.requestBody, "proxy_on_request_body"},
		{&c.requestTrailers, "proxy_on_request_trailers"},
		{&c.requestMetadata, "proxy_on_request_metadata"},
		{&c.responseHeaders, "proxy_on_response_headers"},
		{&c.responseBody, "proxy_on_response_body"},
		{&c.responseTrailers, "proxy_on_response_trailers"},
		{&c.responseMetadata, "proxy_on_response_metadata"},
		{&c.httpCallResponse, "proxy_on_http_call_response"},
		{&c.newConnection, "proxy_on_new_connection"},
		{&c.downstreamData, "proxy_on_downstream_data"},
		{&c.downstreamClose, "proxy_on_downstream_connection_close"},
		{&c.upstreamData, "proxy_on_upstream_data"},
		{&c.upstreamClose, "proxy_on_upstream_connection_close"},
		{&c.foreignFunction, "proxy_on_foreign_function"},
	} {
		if f := mod.ExportedFunction(b.name); f != nil {
			*b.cb = callback{fn: f, arity: len(f.Definition().ParamTypes())}
		}
	}
}

func (i *Instance) invoke(c callback, args ...uint64) (uint64, error) {
	// args does not escape: it is copied into the instance's own stack, so the variadic
	// slice stays on the caller's stack.
	n := min(len(args), c.arity, len(i.stack))
	copy(i.stack[:n], args)
	return i.call(c.fn, n)
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// OnContextCreate creates context id under parent (0 for a root context).
func (i *Instance) OnContextCreate(id, parent uint32) error {
	_, err := i.invoke(i.cb.contextCreate, uint64(id), uint64(parent))
	return err
}

// OnVMStart runs proxy_on_vm_start for the root context; false means the plugin refused.
func (i *Instance) OnVMStart() (bool, error) {
	if i.cb.vmStart.fn == nil {
		return true, nil
	}
	r, err := i.invoke(i.cb.vmStart, uint64(i.RootID), uint64(len(i.Info.VMConfig)))
	return r != 0, err
}

// OnConfigure runs proxy_on_configure for the root context; false means the plugin refused
// its configuration.
func (i *Instance) OnConfigure() (bool, error) {
	if i.cb.configure.fn == nil {
		return true, nil
	}
	r, err := i.invoke(i.cb.configure, uint64(i.RootID), uint64(len(i.Info.Config)))
	return r != 0, err
}

// OnTick runs proxy_on_tick on the root context.
func (i *Instance) OnTick() error {
	_, err := i.invoke(i.cb.tick, uint64(i.RootID))
	return i.afterCallback(err)
}

// OnQueueReady runs proxy_on_queue_ready on the root context.
func (i *Instance) OnQueueReady(queue uint32) error {
	_, err := i.invoke(i.cb.queueReady, uint64(i.RootID), uint64(queue))
	return i.afterCallback(err)
}

// OnDone runs proxy_on_done for context id; with OnLog and OnDelete it ends the context,
// in Envoy's order.
func (i *Instance) OnDone(id uint32) error {
	_, err := i.invoke(i.cb.done, uint64(id))
	return err
}

// OnLog runs proxy_on_log (the access-log phase) for context id.
func (i *Instance) OnLog(id uint32) error {
	_, err := i.invoke(i.cb.log, uint64(id))
	return err
}

// OnDelete runs proxy_on_delete for context id; the plugin forgets it.
func (i *Instance) OnDelete(id uint32) error {
	_, err := i.invoke(i.cb.delete, uint64(id))
	return err
}

func (i *Instance) action(r uint64, err error) (Action, error) {
	if err != nil {
		return ActionContinue, err
	}
	return Action(r), nil
}

// OnRequestHeaders runs proxy_on_request_headers for the bound stream.
func (i *Instance) OnRequestHeaders(n int, end bool) (Action, error) {
	return i.streamCallback(i.cb.requestHeaders, uint64(n), b2u(end))
}

// OnRequestBody runs proxy_on_request_body with the size of the whole buffered body.
func (i *Instance) OnRequestBody(size int, end bool) (Action, error) {
	return i.streamCallback(i.cb.requestBody, uint64(size), b2u(end))
}

// OnRequestTrailers runs proxy_on_request_trailers.
func (i *Instance) OnRequestTrailers(n int) (Action, error) {
	return i.streamCallback(i.cb.requestTrailers, uint64(n), 0)
}

// OnResponseHeaders runs proxy_on_response_headers.
func (i *Instance) OnResponseHeaders(n int, end bool) (Action, error) {
	return i.streamCallback(i.cb.responseHeaders, uint64(n), b2u(end))
}

// OnResponseBody runs proxy_on_response_body.
func (i *Instance) OnResponseBody(size int, end bool) (Action, error) {
	return i.streamCallback(i.cb.responseBody, uint64(size), b2u(end))
}

// OnResponseTrailers runs proxy_on_response_trailers.
func (i *Instance) OnResponseTrailers(n int) (Action, error) {
	return i.streamCallback(i.cb.responseTrailers, uint64(n), 0)
}

// OnNewConnection runs proxy_on_new_connection for the bound connection.
func (i *Instance) OnNewConnection() (Action, error) {
	return i.streamCallback(i.cb.newConnection, 0, 0)
}

// OnDownstreamData runs proxy_on_downstream_data.
func (i *Instance) OnDownstreamData(size int, end bool) (Action, error) {
	return i.streamCallback(i.cb.downstreamData, uint64(size), b2u(end))
}

// OnUpstreamData runs proxy_on_upstream_data.
func (i *Instance) OnUpstreamData(size int, end bool) (Action, error) {
	return i.streamCallback(i.cb.upstreamData, uint64(size), b2u(end))
}

// PeerType says which side closed a connection.
type PeerType uint32

// Peer types.
const (
	PeerUnknown PeerType = 0
	PeerLocal   PeerType = 1
	PeerRemote  PeerType = 2
)

// OnDownstreamClose runs proxy_on_downstream_connection_close.
func (i *Instance) OnDownstreamClose(p PeerType) error {
	_, err := i.invoke(i.cb.downstreamClose, uint64(i.stream.ID), uint64(p))
	return err
}

// OnUpstreamClose runs proxy_on_upstream_connection_close.
func (i *Instance) OnUpstreamClose(p PeerType) error {
	_, err := i.invoke(i.cb.upstreamClose, uint64(i.stream.ID), uint64(p))
	return err
}

// streamCallback runs a callback of the bound stream, then sends the HTTP calls it made and
// delivers their responses before returning, so that the caller sees the plugin's last word
// (a resume, a local response) as this callback's outcome.
func (i *Instance) streamCallback(c callback, a, b uint64) (Action, error) {
	s := i.stream
	i.effective = s.ID
	s.continued = false
	act, err := i.action(i.invoke(c, uint64(s.ID), a, b))
	if err != nil {
		return act, err
	}
	if err := i.afterCallback(nil); err != nil {
		return ActionContinue, err
	}
	if act != ActionContinue && s.resumed() {
		act = ActionContinue
	}
	return act, nil
}
