package abi

// ABI 0.1.0: what it has that 0.2.x replaced. Its header callbacks take no end_of_stream
// flag (the callback binding drops arguments past a callback's arity), it resumes a stream
// with proxy_continue_request / proxy_continue_response instead of proxy_continue_stream, and
// reads the plugin configuration with proxy_get_configuration.
var v01Funcs = []hostFunc{
	{"proxy_continue_request", nil, func(i *Instance, _ []uint64) Status { return i.continueStream(StreamRequest) }},
	{"proxy_continue_response", nil, func(i *Instance, _ []uint64) Status { return i.continueStream(StreamResponse) }},
	{"proxy_clear_route_cache", nil, func(i *Instance, _ []uint64) Status {
		if i.stream == nil {
			return StatusBadArgument
		}
		i.stream.ClearRouteCache = true
		return StatusOK
	}},
	{"proxy_get_configuration", params(2), func(i *Instance, s []uint64) Status {
		return i.returnBytes(i.Info.Config, u32(s[0]), u32(s[1]))
	}},
}

func (i *Instance) continueStream(t StreamType) Status {
	if i.stream == nil || t > StreamUpstream {
		return StatusBadArgument
	}
	i.stream.continued = true
	return StatusOK
}
