// Command shared_data counts requests in shared data with compare-and-swap: the
// proxy-wasm-go-sdk shared_data example's behaviour, written for the host's tests.
package main

import (
	"encoding/binary"
	"errors"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

const key = "shared_data_key"

func main() {}

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) OnVMStart(int) types.OnVMStartStatus {
	// Only the first VM initialises the counter; others find it set.
	if _, _, err := proxywasm.GetSharedData(key); errors.Is(err, types.ErrorStatusNotFound) {
		if err := proxywasm.SetSharedData(key, []byte{}, 0); err != nil {
			proxywasm.LogWarnf("set shared data: %v", err)
		}
	}
	return types.OnVMStartStatusOK
}

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	for {
		data, cas, err := proxywasm.GetSharedData(key)
		if err != nil {
			proxywasm.LogWarnf("get shared data: %v", err)
			break
		}
		var n uint64 = 1
		if len(data) == 8 {
			n = binary.LittleEndian.Uint64(data) + 1
		}
		err = proxywasm.SetSharedData(key, binary.LittleEndian.AppendUint64(nil, n), cas)
		if errors.Is(err, types.ErrorStatusCasMismatch) {
			continue
		}
		if err == nil {
			proxywasm.LogInfof("shared value: %d", n)
		}
		break
	}
	return types.ActionContinue
}
