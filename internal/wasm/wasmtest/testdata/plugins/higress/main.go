// Command higress uses what Higress's ABI 0.2.100 adds to proxy-wasm, as its request headers
// ask: header statuses 2–4 (x-action), a resume inside the callback (x-resume), a local reply
// followed by Continue (x-local), the host properties set_decoder_buffer_limit,
// set_encoder_buffer_limit and clear_route_cache (x-decoder-limit, x-encoder-limit,
// x-keep-route), and a request header change that selects the route again (x-set-route).
// It declares proxy_abi_version_0_2_100 beside the SDK's 0.2.1, as Higress's SDK does.
package main

import (
	"strconv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

//go:wasmexport proxy_abi_version_0_2_100
func abiVersion() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct {
	types.DefaultHttpContext
	pauseResponse bool
}

func header(name string) string {
	v, _ := proxywasm.GetHttpRequestHeader(name)
	return v
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if v := header("x-decoder-limit"); v != "" {
		_ = proxywasm.SetProperty([]string{"set_decoder_buffer_limit"}, []byte(v))
		got, err := proxywasm.GetProperty([]string{"set_decoder_buffer_limit"})
		proxywasm.LogInfof("set_decoder_buffer_limit=%s %v", got, err)
	}
	if v := header("x-encoder-limit"); v != "" {
		_ = proxywasm.SetProperty([]string{"set_encoder_buffer_limit"}, []byte(v))
	}
	s.pauseResponse = header("x-response-pause") != ""
	if header("x-keep-route") != "" {
		_ = proxywasm.SetProperty([]string{"clear_route_cache"}, []byte("off"))
	}
	if v := header("x-set-route"); v != "" {
		_ = proxywasm.ReplaceHttpRequestHeader("x-route", v)
	}
	if header("x-local") != "" {
		_ = proxywasm.SendHttpResponse(418, [][2]string{{"x-local", "1"}}, []byte("local"), -1)
	}
	if header("x-resume") != "" {
		_ = proxywasm.ResumeHttpRequest()
	}
	n, _ := strconv.Atoi(header("x-action"))
	return types.Action(n)
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.pauseResponse {
		return types.ActionPause
	}
	return types.ActionContinue
}
