// Command host_calls calls the host functions the SDK examples leave out (properties,
// metrics, foreign functions, shared queues) on each request and logs what
// it got, one line per call, for the host's tests to check.
package main

import (
	"encoding/binary"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct {
	types.DefaultPluginContext
	counter proxywasm.MetricCounter
	queue   uint32
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	p.counter = proxywasm.DefineCounterMetric("host_calls_requests")
	q, err := proxywasm.RegisterSharedQueue("host_calls_queue")
	if err != nil {
		proxywasm.LogCriticalf("register queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.queue = q
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnQueueReady(id uint32) {
	v, err := proxywasm.DequeueSharedQueue(id)
	proxywasm.LogInfof("dequeued: %s %v", v, err)
}

func (p *plugin) NewHttpContext(uint32) types.HttpContext { return &stream{p: p} }

type stream struct {
	types.DefaultHttpContext
	p *plugin
}

func prop(path ...string) string {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(v)
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	proxywasm.LogInfof("plugin_name=%s", prop("plugin_name"))
	proxywasm.LogInfof("plugin_root_id=%s", prop("plugin_root_id"))
	proxywasm.LogInfof("request.path=%s", prop("request", "path"))
	proxywasm.LogInfof("source.address=%s", prop("source", "address"))
	if v, err := proxywasm.GetProperty([]string{"source", "port"}); err == nil && len(v) == 8 {
		proxywasm.LogInfof("source.port=%d", binary.LittleEndian.Uint64(v))
	}
	proxywasm.LogInfof("missing=%s", prop("no", "such", "attribute"))
	if err := proxywasm.SetProperty([]string{"my", "state"}, []byte("kept")); err != nil {
		proxywasm.LogInfof("set_property: %v", err)
	}
	proxywasm.LogInfof("my.state=%s", prop("my", "state"))

	s.p.counter.Increment(1)
	proxywasm.LogInfof("counter=%d", s.p.counter.Value())

	out, err := proxywasm.CallForeignFunction("reverse", []byte("abc"))
	proxywasm.LogInfof("foreign reverse=%s %v", out, err)
	_, err = proxywasm.CallForeignFunction("nonexistent", nil)
	proxywasm.LogInfof("foreign nonexistent: %v", err)

	if err := proxywasm.EnqueueSharedQueue(s.p.queue, []byte("hello queue")); err != nil {
		proxywasm.LogInfof("enqueue: %v", err)
	}
	return types.ActionContinue
}
