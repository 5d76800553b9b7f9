// Command http_auth_random asks a cluster with an HTTP call and lets the request through or
// answers 403 depending on a hash of the call's response body: the proxy-wasm-go-sdk
// http_auth_random example's behaviour, written for the host's tests.
package main

import (
	"hash/fnv"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const cluster = "httpbin"

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
		return types.ActionContinue
	}
	if _, err := proxywasm.DispatchHttpCall(cluster, hs, nil, nil, 5000, onResponse); err != nil {
		proxywasm.LogCriticalf("dispatch http call: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("http call dispatched to %s", cluster)
	return types.ActionPause
}

func onResponse(_, size, _ int) {
	hs, err := proxywasm.GetHttpCallResponseHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get response headers: %v", err)
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	for _, h := range hs {
		proxywasm.LogInfof("response header from %s: %s: %s", cluster, h[0], h[1])
	}
	body, err := proxywasm.GetHttpCallResponseBody(0, size)
	if err != nil {
		proxywasm.LogCriticalf("failed to get response body: %v", err)
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	h := fnv.New32a()
	h.Write(body)
	if h.Sum32()%2 == 0 {
		proxywasm.LogInfo("access granted")
		_ = proxywasm.ResumeHttpRequest()
		return
	}
	proxywasm.LogInfo("access forbidden")
	if err := proxywasm.SendHttpResponse(403, [][2]string{{"powered-by", "proxy-wasm-go-sdk!!"}},
		[]byte("access forbidden"), -1); err != nil {
		proxywasm.LogErrorf("failed to send local response: %v", err)
		_ = proxywasm.ResumeHttpRequest()
	}
}
