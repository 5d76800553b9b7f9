// Command bad is a proxy-wasm module that misbehaves on purpose, as its plugin configuration
// says: it traps, loops, allocates without bound, or calls host functions with pointers and
// lengths outside its memory. It uses no SDK, so that nothing checks its calls on the way.
package main

import (
	"fmt"
	"unsafe"
)

func main() {}

//go:wasmimport env proxy_log
func proxyLog(level uint32, ptr unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_log
func proxyLogRaw(level uint32, ptr uint32, size uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(typ, start, max uint32, retPtr, retSize unsafe.Pointer) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytesRaw(typ, start, max uint32, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_get_header_map_pairs
func proxyGetHeaderMapPairsRaw(typ uint32, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValueRaw(typ uint32, kPtr, kSize uint32, retPtr, retSize uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValueRaw(typ uint32, kPtr, kSize, vPtr, vSize uint32) uint32

//go:wasmimport env proxy_set_header_map_pairs
func proxySetHeaderMapPairs(typ uint32, ptr unsafe.Pointer, size uint32) uint32

//go:wasmimport env proxy_set_shared_data
func proxySetSharedDataRaw(kPtr, kSize, vPtr, vSize, cas uint32) uint32

//go:wasmimport env proxy_http_call
func proxyHTTPCallRaw(up, upSize, h, hSize, b, bSize, t, tSize, timeout, token uint32) uint32

//go:wasmimport env proxy_send_local_response
func proxySendLocalResponseRaw(status, d, dSize, b, bSize, h, hSize, grpc uint32) uint32

var (
	mode string
	keep [][]byte
)

//go:wasmexport proxy_abi_version_0_2_1
func abiVersion() {}

//go:wasmexport proxy_on_memory_allocate
func allocate(size uint32) unsafe.Pointer {
	b := make([]byte, size)
	keep = append(keep, b)
	return unsafe.Pointer(&b[0])
}

//go:wasmexport proxy_on_context_create
func onContextCreate(id, parent uint32) {}

//go:wasmexport proxy_on_configure
func onConfigure(root, size uint32) uint32 {
	var p *byte
	var n uint32
	if size > 0 && proxyGetBufferBytes(7, 0, size, unsafe.Pointer(&p), unsafe.Pointer(&n)) == 0 {
		mode = string(unsafe.Slice(p, n))
	}
	switch mode {
	case "trap-configure":
		panic("configured to trap")
	case "refuse":
		return 0
	}
	return 1
}

func logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	proxyLog(2, unsafe.Pointer(unsafe.StringData(s)), uint32(len(s)))
}

//go:wasmexport proxy_on_request_headers
func onRequestHeaders(id, n, end uint32) uint32 {
	switch mode {
	case "trap":
		panic("configured to trap")
	case "loop":
		for {
		}
	case "alloc":
		for {
			keep = append(keep, make([]byte, 1<<20))
		}
	case "badptr":
		const far = 0xfffffff0
		var p, sz uint32
		pp, ps := uint32(uintptr(unsafe.Pointer(&p))), uint32(uintptr(unsafe.Pointer(&sz)))
		key := "host"
		kp := uint32(uintptr(unsafe.Pointer(unsafe.StringData(key))))
		bad := []byte{0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0}
		logf("statuses: %d %d %d %d %d %d %d %d %d %d %d",
			proxyLogRaw(2, far, 100),
			proxyGetBufferBytesRaw(7, 0, 10, far, ps),
			proxyGetBufferBytesRaw(7, 0, 10, pp, far),
			proxyGetHeaderMapPairsRaw(0, far, ps),
			proxyGetHeaderMapValueRaw(0, far, 4, pp, ps),
			proxyGetHeaderMapValueRaw(0, kp, 4, far, ps),
			proxyAddHeaderMapValueRaw(0, kp, 4, far, 0x7fffffff),
			proxySetHeaderMapPairs(0, unsafe.Pointer(&bad[0]), uint32(len(bad))),
			proxySetSharedDataRaw(far, 16, 0, 0, 0),
			proxyHTTPCallRaw(far, 3, 0, 0, 0, 0, 0, 0, 1000, pp),
			proxySendLocalResponseRaw(200, 0, 0, far, 0x1000, 0, 0, 0))
	}
	return 0
}
