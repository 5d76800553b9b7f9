// Command helloworld logs at start and on every tick: the proxy-wasm-go-sdk helloworld
// example's behaviour, written for the host's tests.
package main

import (
	"math/rand/v2"
	"time"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

type plugin struct{ types.DefaultPluginContext }

func (*plugin) OnPluginStart(int) types.OnPluginStartStatus {
	proxywasm.LogInfo("OnPluginStart from Go!")
	if err := proxywasm.SetTickPeriodMilliSeconds(100); err != nil {
		proxywasm.LogCriticalf("set tick period: %v", err)
	}
	return types.OnPluginStartStatusOK
}

func (*plugin) OnTick() {
	proxywasm.LogInfof("It's %d: random value: %d", time.Now().UnixNano(), rand.Uint64())
}

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &types.DefaultHttpContext{} }
