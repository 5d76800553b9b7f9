package abi

// ABI 0.2.0 and 0.2.1: stream control by stream type (proxy_continue_stream,
// proxy_close_stream) and, in 0.2.1, proxy_get_log_level. Everything else they share with
// 0.1.0 is in host.go.
var v02Funcs = []hostFunc{
	{"proxy_continue_stream", params(1), func(i *Instance, s []uint64) Status { return i.continueStream(StreamType(s[0])) }},
	{"proxy_close_stream", params(1), func(i *Instance, s []uint64) Status {
		t := StreamType(s[0])
		if i.stream == nil || t > StreamUpstream {
			return StatusBadArgument
		}
		i.stream.closed[t] = true
		return StatusOK
	}},
	{"proxy_get_log_level", params(1), func(i *Instance, s []uint64) Status {
		if !i.memory().WriteUint32Le(u32(s[0]), uint32(i.Info.LogLevel)) {
			return StatusInvalidMemoryAccess
		}
		return StatusOK
	}},
}
