package abi

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
)

// exitDeadline is the exit code an instance is closed with when a callback overruns its
// deadline; any other trap keeps wazero's own error.
const exitDeadline = 0xdead

// ErrDeadline is returned by a callback that ran past its deadline. The instance is closed.
var ErrDeadline = errors.New("wasm: callback deadline exceeded")

// Instance is one module instance and its host-side state. It is single-threaded: one
// goroutine at a time calls into it (the vm pool guarantees it).
type Instance struct {
	Info   *PluginInfo
	RootID uint32 // the root (plugin) context id

	mod      api.Module
	module   *runtime.Module
	ctx      context.Context // carries the instance to host functions; built once
	cb       callbacks
	alloc    api.Function
	stack    [8]uint64 // params and results of the current callback
	allocStk [1]uint64 // params and results of a nested allocation
	depth    int

	deadline time.Duration
	timer    *time.Timer
	expired  atomic.Bool
	broken   error

	nextID    uint32
	effective uint32
	stream    *Stream
	tick      uint32 // period in ms set by the plugin; 0 is off
	scratch   []byte
	rootArena *Stream

	// HTTP calls the plugin made during the current callback, sent after it returns.
	callouts  []*callout
	nextToken uint32
	callResp  *HTTPCallResponse
}

type callout struct {
	token   uint32
	context uint32 // the context that made it: the root, or a stream through the effective context
	req     HTTPCallRequest
}

// NewInstance binds an instantiated module to its plugin. deadline bounds every callback (0:
// none); a callback that overruns it closes the module from a timer goroutine (the module is
// compiled with close-on-done checks, so even a loop without calls stops).
func NewInstance(mod api.Module, m *runtime.Module, info *PluginInfo, deadline time.Duration) *Instance {
	i := &Instance{Info: info, mod: mod, module: m, nextID: 0}
	i.ctx = context.WithValue(context.Background(), instanceKey{}, i)
	i.alloc = mod.ExportedFunction(m.Allocator)
	i.cb.bind(mod)
	i.SetDeadline(deadline)
	return i
}

// Broken reports why the instance can no longer be used (a trap, a deadline), or nil.
func (i *Instance) Broken() error { return i.broken }

// Close releases the module instance.
func (i *Instance) Close() error {
	if i.timer != nil {
		i.timer.Stop()
	}
	if i.broken == nil {
		i.broken = errors.New("wasm: instance closed")
	}
	return i.mod.Close(context.Background())
}

// TickPeriod is the period the plugin last asked for with proxy_set_tick_period_milliseconds.
func (i *Instance) TickPeriod() time.Duration { return time.Duration(i.tick) * time.Millisecond }

// NewContextID hands out the next context id of this instance.
func (i *Instance) NewContextID() uint32 {
	i.nextID++
	return i.nextID
}

// call runs an exported callback with the params in i.stack[:n]. A nil fn (not exported) is
// a no-op returning 0, which is each callback's neutral result.
func (i *Instance) call(fn api.Function, n int) (uint64, error) {
	if i.broken != nil {
		return 0, i.broken
	}
	if fn == nil {
		return 0, nil
	}
	if i.timer != nil && i.depth == 0 {
		i.timer.Reset(i.deadline)
	}
	i.depth++
	err := fn.CallWithStack(i.ctx, i.stack[:max(n, 1)])
	i.depth--
	if i.timer != nil && i.depth == 0 && !i.timer.Stop() && err == nil {
		// The deadline fired as the callback returned: its result stands, but the timer
		// is closing the module, so the instance must not be used again.
		i.broken = fmt.Errorf("%w (%s)", ErrDeadline, i.deadline)
		return i.stack[0], nil
	}
	if err != nil {
		i.broken = i.trapError(err)
		return 0, i.broken
	}
	return i.stack[0], nil
}

func (i *Instance) trapError(err error) error {
	var exit *sys.ExitError
	if i.expired.Load() || (errors.As(err, &exit) && exit.ExitCode() == exitDeadline) {
		return fmt.Errorf("%w (%s)", ErrDeadline, i.deadline)
	}
	return fmt.Errorf("wasm: trap: %w", err)
}

// allocate asks the guest for size bytes. It runs guest code (the plugin's allocator) from
// inside a host function, within the current callback's deadline.
func (i *Instance) allocate(size uint32) (uint32, bool) {
	if i.alloc == nil || size == 0 {
		return 0, false
	}
	i.allocStk[0] = uint64(size)
	if err := i.alloc.CallWithStack(i.ctx, i.allocStk[:]); err != nil {
		return 0, false
	}
	p := uint32(i.allocStk[0])
	if p == 0 {
		return 0, false
	}
	if _, ok := i.memory().Read(p, size); !ok {
		return 0, false
	}
	return p, true
}

// returnBytes hands data to the guest the proxy-wasm way: it allocates guest memory, copies
// data into it, and writes the pointer and the size to the two locations the guest gave.
func (i *Instance) returnBytes(data []byte, ptrPtr, sizePtr uint32) Status {
	mem := i.memory()
	if _, ok := mem.Read(ptrPtr, 4); !ok {
		return StatusInvalidMemoryAccess
	}
	if _, ok := mem.Read(sizePtr, 4); !ok {
		return StatusInvalidMemoryAccess
	}
	var p uint32
	if len(data) > 0 {
		var ok bool
		if p, ok = i.allocate(uint32(len(data))); !ok {
			return StatusInvalidMemoryAccess
		}
		mem.Write(p, data)
	}
	mem.WriteUint32Le(ptrPtr, p)
	mem.WriteUint32Le(sizePtr, uint32(len(data)))
	return StatusOK
}

// read returns a view of guest memory; it is valid until the guest runs again.
func (i *Instance) read(ptr, size uint32) ([]byte, bool) {
	if size == 0 {
		return nil, true
	}
	return i.memory().Read(ptr, size)
}

// SetDeadline changes the per-callback deadline (the start of an instance runs under a longer
// one). It must not be called while a callback runs.
func (i *Instance) SetDeadline(d time.Duration) {
	i.deadline = d
	if d > 0 && i.timer == nil {
		i.timer = time.AfterFunc(time.Hour, func() {
			i.expired.Store(true)
			_ = i.mod.CloseWithExitCode(context.Background(), exitDeadline)
		})
		i.timer.Stop()
	}
}
