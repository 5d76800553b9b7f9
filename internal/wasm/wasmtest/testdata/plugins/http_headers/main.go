// Command http_headers rewrites request headers and adds configured response headers: the
// proxy-wasm-go-sdk http_headers example's behaviour, written for the host's tests.
package main

import (
	"encoding/json"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	name, value string
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil || len(data) == 0 {
		return types.OnPluginStartStatusOK
	}
	var cfg struct{ Header, Value string }
	if err := json.Unmarshal(data, &cfg); err != nil {
		proxywasm.LogCriticalf("invalid configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.name, p.value = strings.TrimSpace(cfg.Header), strings.TrimSpace(cfg.Value)
	if p.name == "" || p.value == "" {
		proxywasm.LogCritical(`invalid configuration; expected {"header": "<name>", "value": "<value>"}`)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("header from config: %s = %s", p.name, p.value)
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	return &stream{id: id, name: p.name, value: p.value}
}

type stream struct {
	types.DefaultHttpContext
	id          uint32
	name, value string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if err := proxywasm.ReplaceHttpRequestHeader("test", "best"); err != nil {
		proxywasm.LogCritical("failed to set request header: test")
	}
	hs, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get request headers: %v", err)
	}
	for _, h := range hs {
		proxywasm.LogInfof("request header --> %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if err := proxywasm.AddHttpResponseHeader("x-proxy-wasm-go-sdk-example", "http_headers"); err != nil {
		proxywasm.LogCriticalf("failed to add response header: %v", err)
	}
	if s.name != "" {
		if err := proxywasm.AddHttpResponseHeader(s.name, s.value); err != nil {
			proxywasm.LogCriticalf("failed to add response header: %v", err)
		}
	}
	hs, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		proxywasm.LogCriticalf("failed to get response headers: %v", err)
	}
	for _, h := range hs {
		proxywasm.LogInfof("response header <-- %s: %s", h[0], h[1])
	}
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() { proxywasm.LogInfof("%d finished", s.id) }
