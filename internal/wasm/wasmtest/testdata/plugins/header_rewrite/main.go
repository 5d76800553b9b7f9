// Command header_rewrite is the smallest useful header plugin: it reads one request header,
// replaces another and adds a response header, with no logging. It measures what the host
// adds to a request, as opposed to what a plugin's own work costs.
package main

import (
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	if v, err := proxywasm.GetHttpRequestHeader("x-tenant"); err == nil && v != "" {
		_ = proxywasm.ReplaceHttpRequestHeader("x-tenant-seen", "yes")
	}
	_ = proxywasm.ReplaceHttpRequestHeader("test", "best")
	return types.ActionContinue
}

func (*stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-rewritten", "1")
	return types.ActionContinue
}
