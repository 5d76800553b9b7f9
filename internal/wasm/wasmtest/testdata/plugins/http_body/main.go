// Command http_body appends, prepends or replaces the request or the response body as the
// request's headers ask: the proxy-wasm-go-sdk http_body example's behaviour, written for the
// host's tests.
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

type stream struct {
	types.DefaultHttpContext
	response bool
	op       string
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	if at, err := proxywasm.GetHttpRequestHeader("buffer-replace-at"); err == nil && at == "response" {
		s.response = true
	}
	if _, err := proxywasm.GetHttpRequestHeader("content-length"); err != nil {
		if err := proxywasm.SendHttpResponse(400, nil, []byte("content must be provided"), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	if err := proxywasm.RemoveHttpRequestHeader("content-length"); err != nil {
		panic(err)
	}
	s.op, _ = proxywasm.GetHttpRequestHeader("buffer-operation")
	switch s.op {
	case "append", "prepend", "replace":
	default:
		s.op = "replace"
	}
	return types.ActionContinue
}

func (s *stream) OnHttpRequestBody(size int, end bool) types.Action {
	if s.response {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get request body: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("original request body: %s", body)
	s.rewrite(proxywasm.AppendHttpRequestBody, proxywasm.PrependHttpRequestBody, proxywasm.ReplaceHttpRequestBody)
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.response {
		if err := proxywasm.RemoveHttpResponseHeader("content-length"); err != nil {
			panic(err)
		}
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(size int, end bool) types.Action {
	if !s.response {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpResponseBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get response body: %v", err)
		return types.ActionContinue
	}
	proxywasm.LogInfof("original response body: %s", body)
	s.rewrite(proxywasm.AppendHttpResponseBody, proxywasm.PrependHttpResponseBody, proxywasm.ReplaceHttpResponseBody)
	return types.ActionContinue
}

func (s *stream) rewrite(appendFn, prependFn, replaceFn func([]byte) error) {
	var err error
	switch s.op {
	case "append":
		err = appendFn([]byte("[this is appended body]"))
	case "prepend":
		err = prependFn([]byte("[this is prepended body]"))
	default:
		err = replaceFn([]byte("[this is replaced body]"))
	}
	if err != nil {
		proxywasm.LogErrorf("failed to %s body: %v", s.op, err)
	}
}
