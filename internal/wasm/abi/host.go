package abi

import (
	"context"
	"fmt"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/nuncio-gw/nuncio/internal/header"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// hostFunc is one function of the env module. fn reads its parameters from stack and
// returns the status the guest gets.
type hostFunc struct {
	name   string
	params []api.ValueType
	fn     func(i *Instance, stack []uint64) Status
}

func params(n int) []api.ValueType {
	p := make([]api.ValueType, n)
	for k := range p {
		p[k] = i32
	}
	return p
}

// Register adds the "env" host module with every function of the ABI versions served, so
// that a module of any of them links. Call it once per wazero runtime.
func Register(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder("env")
	for _, set := range [][]hostFunc{commonFuncs, v01Funcs, v02Funcs} {
		for _, f := range set {
			fn := f.fn
			b.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
					i := instanceOf(ctx)
					if i == nil {
						stack[0] = uint64(StatusInternalFailure)
						return
					}
					stack[0] = uint64(fn(i, stack))
				}), f.params, []api.ValueType{i32}).
				Export(f.name)
		}
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("wasm: env host module: %w", err)
	}
	return nil
}

func u32(v uint64) uint32 { return uint32(v) }

// view turns guest bytes into a string without copying, for lookups that do not keep it.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

var commonFuncs = []hostFunc{
	{"proxy_log", params(3), hostLog},
	{"proxy_get_current_time_nanoseconds", params(1), hostCurrentTime},
	{"proxy_set_tick_period_milliseconds", params(1), func(i *Instance, s []uint64) Status {
		i.tick = u32(s[0])
		return StatusOK
	}},
	{"proxy_get_buffer_bytes", params(5), hostGetBufferBytes},
	{"proxy_get_buffer_status", params(3), hostGetBufferStatus},
	{"proxy_set_buffer_bytes", params(5), hostSetBufferBytes},
	{"proxy_get_header_map_pairs", params(3), hostGetHeaderMapPairs},
	{"proxy_set_header_map_pairs", params(3), hostSetHeaderMapPairs},
	{"proxy_get_header_map_value", params(5), hostGetHeaderMapValue},
	{"proxy_add_header_map_value", params(5), func(i *Instance, s []uint64) Status { return hostMutateHeader(i, s, mutAdd) }},
	{"proxy_replace_header_map_value", params(5), func(i *Instance, s []uint64) Status { return hostMutateHeader(i, s, mutSet) }},
	{"proxy_remove_header_map_value", params(3), func(i *Instance, s []uint64) Status { return hostMutateHeader(i, s, mutDel) }},
	{"proxy_get_header_map_size", params(2), hostGetHeaderMapSize},
	{"proxy_get_property", params(4), hostGetProperty},
	{"proxy_set_property", params(4), hostSetProperty},
	{"proxy_get_shared_data", params(5), hostGetSharedData},
	{"proxy_set_shared_data", params(5), hostSetSharedData},
	{"proxy_register_shared_queue", params(3), hostRegisterQueue},
	{"proxy_resolve_shared_queue", params(5), hostResolveQueue},
	{"proxy_dequeue_shared_queue", params(3), hostDequeue},
	{"proxy_enqueue_shared_queue", params(3), hostEnqueue},
	{"proxy_define_metric", params(4), hostDefineMetric},
	{"proxy_increment_metric", []api.ValueType{i32, i64}, func(i *Instance, s []uint64) Status {
		return i.Info.Metrics.increment(u32(s[0]), int64(s[1]))
	}},
	{"proxy_record_metric", []api.ValueType{i32, i64}, func(i *Instance, s []uint64) Status {
		return i.Info.Metrics.record(u32(s[0]), s[1])
	}},
	{"proxy_get_metric", params(2), hostGetMetric},
	{"proxy_http_call", params(10), hostHTTPCall},
	{"proxy_call_foreign_function", params(6), hostCallForeign},
	{"proxy_set_effective_context", params(1), hostSetEffectiveContext},
	{"proxy_done", nil, func(i *Instance, _ []uint64) Status {
		if i.stream != nil {
			i.stream.Done = true
		}
		return StatusOK
	}},
	{"proxy_send_local_response", params(8), hostSendLocalResponse},
	// gRPC calls and streams: linked so that plugins importing them load; not served yet.
	{"proxy_grpc_call", params(12), unimplemented},
	{"proxy_grpc_stream", params(9), unimplemented},
	{"proxy_grpc_send", params(4), unimplemented},
	{"proxy_grpc_cancel", params(1), unimplemented},
	{"proxy_grpc_close", params(1), unimplemented},
	{"proxy_get_status", params(3), unimplemented},
}

func unimplemented(*Instance, []uint64) Status { return StatusUnimplemented }

func hostLog(i *Instance, s []uint64) Status {
	level := LogLevel(s[0])
	msg, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if level > LogCritical {
		return StatusBadArgument
	}
	if level >= i.Info.LogLevel && i.Info.Log != nil {
		i.Info.Log.Log(level, i.Info.Name, msg)
	}
	return StatusOK
}

func hostCurrentTime(i *Instance, s []uint64) Status {
	if !i.memory().WriteUint64Le(u32(s[0]), uint64(time.Now().UnixNano())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// buffer returns the bytes of a buffer type, and the slice to write to when it is writable.
func (i *Instance) buffer(t BufferType) (data []byte, w *[]byte, ok bool) {
	s := i.stream
	switch t {
	case BufferRequestBody, BufferDownstreamData:
		if s != nil && s.RequestBody != nil {
			return *s.RequestBody, s.RequestBody, true
		}
	case BufferResponseBody, BufferUpstreamData:
		if s != nil && s.ResponseBody != nil {
			return *s.ResponseBody, s.ResponseBody, true
		}
	case BufferHTTPCallResponse:
		if i.callResp != nil {
			return i.callResp.Body, nil, true
		}
	case BufferVMConfiguration:
		return i.Info.VMConfig, nil, true
	case BufferPluginConfig:
		return i.Info.Config, nil, true
	}
	return nil, nil, false
}

func hostGetBufferBytes(i *Instance, s []uint64) Status {
	data, _, ok := i.buffer(BufferType(s[0]))
	if !ok {
		return StatusNotFound
	}
	start, size := uint64(u32(s[1])), uint64(u32(s[2]))
	if start > uint64(len(data)) {
		return StatusBadArgument
	}
	end := min(start+size, uint64(len(data)))
	return i.returnBytes(data[start:end], u32(s[3]), u32(s[4]))
}

func hostGetBufferStatus(i *Instance, s []uint64) Status {
	data, _, ok := i.buffer(BufferType(s[0]))
	if !ok {
		return StatusNotFound
	}
	mem := i.memory()
	if !mem.WriteUint32Le(u32(s[1]), uint32(len(data))) || !mem.WriteUint32Le(u32(s[2]), 0) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// hostSetBufferBytes replaces [start, start+length) of the buffer, clamped to its size, with
// the guest's bytes: (0, 0) prepends, (size, _) appends, (0, >=size) replaces, as the SDKs
// use it.
func hostSetBufferBytes(i *Instance, s []uint64) Status {
	_, w, ok := i.buffer(BufferType(s[0]))
	if !ok {
		return StatusNotFound
	}
	if w == nil {
		return StatusBadArgument
	}
	data, ok := i.read(u32(s[3]), u32(s[4]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	*w = splice(*w, uint64(u32(s[1])), uint64(u32(s[2])), data)
	return StatusOK
}

// splice replaces buf[start:start+length], both clamped to len(buf), with data, in place
// when buf has the room.
func splice(buf []byte, start, length uint64, data []byte) []byte {
	start = min(start, uint64(len(buf)))
	end := min(start+length, uint64(len(buf)))
	tail := buf[end:]
	newLen := int(start) + len(data) + len(tail)
	if cap(buf) < newLen {
		nb := make([]byte, newLen, newLen+newLen/2)
		copy(nb, buf[:start])
		copy(nb[int(start)+len(data):], tail)
		copy(nb[start:], data)
		return nb
	}
	out := buf[:max(newLen, len(buf))]
	copy(out[int(start)+len(data):], tail) // copy handles the overlap
	copy(out[start:], data)
	return out[:newLen]
}

// headerMap returns the header map of a map type for the current context.
func (i *Instance) headerMap(t MapType) HeaderMap {
	if s := i.stream; s != nil {
		switch t {
		case MapRequestHeaders:
			return s.RequestHeaders
		case MapRequestTrailers:
			return s.RequestTrailers
		case MapResponseHeaders:
			return s.ResponseHeaders
		case MapResponseTrailers:
			return s.ResponseTrailers
		}
	}
	if i.callResp != nil {
		switch t {
		case MapHTTPCallResponse:
			return (*Pairs)(&i.callResp.Headers)
		case MapHTTPCallResponseTrls:
			return (*Pairs)(&i.callResp.Trailers)
		}
	}
	return nil
}

func hostGetHeaderMapPairs(i *Instance, s []uint64) Status {
	m := i.headerMap(MapType(s[0]))
	if m == nil {
		return StatusNotFound
	}
	ptrPtr, sizePtr := u32(s[1]), u32(s[2])
	mem := i.memory()
	if _, ok := mem.Read(ptrPtr, 4); !ok {
		return StatusInvalidMemoryAccess
	}
	if _, ok := mem.Read(sizePtr, 4); !ok {
		return StatusInvalidMemoryAccess
	}
	// Encoded straight into guest memory: no host-side buffer.
	size := uint32(pairsSize(m))
	p, ok := i.allocate(size)
	if !ok {
		return StatusInvalidMemoryAccess
	}
	dst, _ := mem.Read(p, size)
	encodePairs(dst, m)
	mem.WriteUint32Le(ptrPtr, p)
	mem.WriteUint32Le(sizePtr, size)
	return StatusOK
}

func hostSetHeaderMapPairs(i *Instance, s []uint64) Status {
	m := i.headerMap(MapType(s[0]))
	if m == nil {
		return StatusNotFound
	}
	b, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if !decodePairs(b, nil) {
		return StatusBadArgument
	}
	i.touched(MapType(s[0]))
	st := i.arenaStream()
	// Envoy replaces the whole map. Each Del removes at least the name at 0, so Len bounds
	// the loop even for a map that misbehaves.
	for n := m.Len(); n > 0 && m.Len() > 0; n-- {
		name, _ := m.At(0)
		m.Del(name)
	}
	decodePairs(b, func(name, value []byte) { m.Add(st.keepLower(name), st.keep(value)) })
	return StatusOK
}

func hostGetHeaderMapValue(i *Instance, s []uint64) Status {
	m := i.headerMap(MapType(s[0]))
	if m == nil {
		return StatusNotFound
	}
	key, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	v, found := m.Get(view(key))
	if !found {
		return StatusNotFound
	}
	return i.returnBytes(unsafe.Slice(unsafe.StringData(v), len(v)), u32(s[3]), u32(s[4]))
}

type mutation uint8

const (
	mutAdd mutation = iota
	mutSet
	mutDel
)

func hostMutateHeader(i *Instance, s []uint64, op mutation) Status {
	m := i.headerMap(MapType(s[0]))
	if m == nil {
		return StatusNotFound
	}
	i.touched(MapType(s[0]))
	key, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if op == mutDel {
		m.Del(lowerView(i.arenaStream(), key))
		return StatusOK
	}
	value, ok := i.read(u32(s[3]), u32(s[4]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	st := i.arenaStream()
	if op == mutAdd {
		m.Add(st.keepLower(key), st.keep(value))
	} else {
		m.Set(st.keepLower(key), st.keep(value))
	}
	return StatusOK
}

// lowerView returns key as a lower-case string, copying it only when it has upper-case bytes.
func lowerView(st *Stream, key []byte) string {
	for _, c := range key {
		if 'A' <= c && c <= 'Z' {
			return st.keepLower(key)
		}
	}
	return view(key)
}

func hostGetHeaderMapSize(i *Instance, s []uint64) Status {
	m := i.headerMap(MapType(s[0]))
	if m == nil {
		return StatusNotFound
	}
	if !i.memory().WriteUint32Le(u32(s[1]), uint32(pairsSize(m))) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// arenaStream is where strings the plugin hands over are kept: the bound stream's arena, or
// the root's for callbacks outside a stream.
func (i *Instance) arenaStream() *Stream {
	if i.stream != nil {
		return i.stream
	}
	if i.rootArena == nil {
		i.rootArena = &Stream{}
	}
	return i.rootArena
}

func hostGetProperty(i *Instance, s []uint64) Status {
	pathB, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	path := view(pathB)
	dst := i.scratch[:0]
	found := false
	if st := i.stream; st != nil {
		if v, ok := st.filterState[path]; ok {
			dst, found = append(dst, v...), true
		}
	}
	if !found {
		dst, found = i.pluginProperty(dst, path)
	}
	if !found && i.stream != nil && i.stream.Properties != nil {
		dst, found = i.stream.Properties.AppendProperty(dst, path)
	}
	i.scratch = dst[:0]
	if !found {
		return StatusNotFound
	}
	return i.returnBytes(dst, u32(s[2]), u32(s[3]))
}

// hostSetProperty stores a value in the stream's filter state, where get_property finds it.
func hostSetProperty(i *Instance, s []uint64) Status {
	path, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	value, ok := i.read(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	st := i.stream
	if st == nil {
		return StatusBadArgument
	}
	if !st.hostProperty(view(path), value) {
		return StatusBadArgument
	}
	if st.filterState == nil {
		st.filterState = map[string][]byte{}
	}
	st.filterState[string(path)] = append([]byte(nil), value...)
	return StatusOK
}

// touched notes a change of the request headers, after which Envoy selects the route again.
func (i *Instance) touched(t MapType) {
	if t == MapRequestHeaders && i.stream != nil {
		i.stream.RequestHeadersChanged = true
	}
}

func hostGetSharedData(i *Instance, s []uint64) Status {
	key, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	// Copied out under the store's lock, then handed to the guest without it: the guest's
	// allocator runs guest code, which must never hold a lock other instances wait on.
	val, cas, found := i.Info.Shared.Get(i.Info.VMID, key, i.scratch[:0])
	i.scratch = val[:0]
	if !found {
		return StatusNotFound
	}
	if _, ok := i.memory().Read(u32(s[4]), 4); !ok {
		return StatusInvalidMemoryAccess
	}
	if st := i.returnBytes(val, u32(s[2]), u32(s[3])); st != StatusOK {
		return st
	}
	i.memory().WriteUint32Le(u32(s[4]), cas)
	return StatusOK
}

func hostSetSharedData(i *Instance, s []uint64) Status {
	key, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	value, ok := i.read(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	return i.Info.Shared.Set(i.Info.VMID, key, value, u32(s[4]))
}

func hostRegisterQueue(i *Instance, s []uint64) Status {
	name, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if _, ok := i.memory().Read(u32(s[2]), 4); !ok {
		return StatusInvalidMemoryAccess
	}
	id := i.Info.Queues.Register(i.Info.VMID, name, i.Info.OnQueueReady)
	i.memory().WriteUint32Le(u32(s[2]), id)
	return StatusOK
}

func hostResolveQueue(i *Instance, s []uint64) Status {
	vm, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	name, ok := i.read(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	vmID := view(vm)
	if vmID == "" {
		vmID = i.Info.VMID
	}
	id, found := i.Info.Queues.Resolve(vmID, name)
	if !found {
		return StatusNotFound
	}
	if !i.memory().WriteUint32Le(u32(s[4]), id) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

func hostDequeue(i *Instance, s []uint64) Status {
	val, st := i.Info.Queues.Dequeue(u32(s[0]), i.scratch[:0])
	i.scratch = val[:0]
	if st != StatusOK {
		return st
	}
	return i.returnBytes(val, u32(s[1]), u32(s[2]))
}

func hostEnqueue(i *Instance, s []uint64) Status {
	item, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	return i.Info.Queues.Enqueue(u32(s[0]), item)
}

func hostDefineMetric(i *Instance, s []uint64) Status {
	name, ok := i.read(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if _, ok := i.memory().Read(u32(s[3]), 4); !ok {
		return StatusInvalidMemoryAccess
	}
	id, st := i.Info.Metrics.Define(MetricType(s[0]), name)
	if st == StatusOK {
		i.memory().WriteUint32Le(u32(s[3]), id)
	}
	return st
}

func hostGetMetric(i *Instance, s []uint64) Status {
	m := i.Info.Metrics.Get(u32(s[0]))
	if m == nil {
		return StatusNotFound
	}
	if !i.memory().WriteUint64Le(u32(s[1]), uint64(m.Value.Load())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// hostHTTPCall records the call; it is sent when the current callback returns (see
// afterCallback), the host's equivalent of Envoy's asynchronous dispatch.
func hostHTTPCall(i *Instance, s []uint64) Status {
	cluster, ok1 := i.read(u32(s[0]), u32(s[1]))
	hdrs, ok2 := i.read(u32(s[2]), u32(s[3]))
	body, ok3 := i.read(u32(s[4]), u32(s[5]))
	trls, ok4 := i.read(u32(s[6]), u32(s[7]))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return StatusInvalidMemoryAccess
	}
	if _, ok := i.memory().Read(u32(s[9]), 4); !ok {
		return StatusInvalidMemoryAccess
	}
	if i.Info.Caller == nil {
		return StatusInternalFailure
	}
	co := &callout{context: i.effective}
	if !decodePairs(hdrs, func(n, v []byte) {
		co.req.Headers = append(co.req.Headers, header.Field{Name: string(n), Value: string(v)})
	}) || !decodePairs(trls, func(n, v []byte) {
		co.req.Trailers = append(co.req.Trailers, header.Field{Name: string(n), Value: string(v)})
	}) {
		return StatusBadArgument
	}
	if len(cluster) == 0 {
		return StatusBadArgument
	}
	// Envoy refuses a call without :method, :path and :authority.
	r := Pairs(co.req.Headers)
	for _, p := range [...]string{":method", ":path", ":authority"} {
		if _, ok := r.Get(p); !ok {
			return StatusBadArgument
		}
	}
	co.req.Cluster = string(cluster)
	co.req.Body = append([]byte(nil), body...)
	co.req.Timeout = millis(u32(s[8]))
	i.nextToken++
	co.token = i.nextToken
	i.callouts = append(i.callouts, co)
	i.memory().WriteUint32Le(u32(s[9]), co.token)
	return StatusOK
}

func hostCallForeign(i *Instance, s []uint64) Status {
	name, ok := i.read(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	args, ok := i.read(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	f := i.Info.Foreign[view(name)]
	if f == nil {
		return StatusNotFound
	}
	// args alias guest memory, which the function may not outlive; the result is copied.
	out, err := f(i.scratch[:0], args)
	if err != nil {
		return StatusInternalFailure
	}
	i.scratch = out[:0]
	return i.returnBytes(out, u32(s[4]), u32(s[5]))
}

func hostSetEffectiveContext(i *Instance, s []uint64) Status {
	id := u32(s[0])
	if id != i.RootID && (i.stream == nil || id != i.stream.ID) {
		return StatusBadArgument
	}
	i.effective = id
	return StatusOK
}

func hostSendLocalResponse(i *Instance, s []uint64) Status {
	st := i.stream
	if st == nil {
		return StatusBadArgument
	}
	details, ok1 := i.read(u32(s[1]), u32(s[2]))
	body, ok2 := i.read(u32(s[3]), u32(s[4]))
	hdrs, ok3 := i.read(u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		return StatusInvalidMemoryAccess
	}
	if !decodePairs(hdrs, nil) {
		return StatusBadArgument
	}
	code := int(u32(s[0]))
	if code < 200 || code > 999 {
		return StatusBadArgument
	}
	lr := &st.Local
	lr.Sent = true
	lr.Status = code
	lr.Details = st.keep(details)
	lr.Body = append(lr.Body[:0], body...)
	lr.Headers = lr.Headers[:0]
	decodePairs(hdrs, func(n, v []byte) {
		lr.Headers = append(lr.Headers, header.Field{Name: st.keepLower(n), Value: st.keep(v)})
	})
	lr.GRPCStatus = int32(u32(s[7]))
	return StatusOK
}
