// Package vm runs proxy-wasm plugins: a Host per process (the engine and the stores plugins
// share), a Plugin per loaded module and configuration, and a pool of instances per plugin.
// A module instance is single-threaded, so a stream takes one instance for itself and gives it
// back at its end. An instance that traps or overruns its deadline is closed and the pool
// makes a new one; the stream that hit it gets ActionFail, no other stream sees anything.
//
// The adapters (the HTTP filter, later the network filter) call Plugin.NewStream and the
// Stream callbacks; they never touch the ABI.
package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
)

// Host is the process's wasm host.
type Host struct {
	Engine *runtime.Engine
	Shared *abi.SharedData
	Queues *abi.Queues
}

// NewHost builds the engine and registers the proxy-wasm host functions.
func NewHost(ctx context.Context, cfg runtime.Config) (*Host, error) {
	e, err := runtime.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := abi.Register(ctx, e.Runtime()); err != nil {
		_ = e.Close(ctx)
		return nil, err
	}
	return &Host{Engine: e, Shared: abi.NewSharedData(), Queues: abi.NewQueues()}, nil
}

// Close releases every module and instance.
func (h *Host) Close(ctx context.Context) error { return h.Engine.Close(ctx) }

// Config is one plugin: Envoy's PluginConfig and VmConfig, plus the host's limits.
type Config struct {
	Name     string
	RootID   string
	VMID     string
	Config   []byte // plugin_config.configuration
	VMConfig []byte // vm_config.configuration

	LogLevel abi.LogLevel
	Log      abi.Logger // nil: slog.Default()
	Caller   abi.HTTPCaller
	Foreign  map[string]abi.ForeignFunc

	// Deadline bounds each callback; 0 means DefaultDeadline.
	Deadline time.Duration
	// StartTimeout bounds making an instance (_initialize, on_vm_start, on_configure);
	// 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// MaxInstances bounds the pool; a stream waits for an instance when all are taken.
	// 0 means unbounded.
	MaxInstances int
	// Stats, when set, receives the plugin's metrics as wasmcustom.<name> stats.
	Stats *stats.Scope
	// MinInstances are started at load, as Envoy starts one VM per worker: plugins that
	// initialise shared state in proxy_on_vm_start expect every VM to start before traffic.
	MinInstances int
}

// Defaults of Config.
const (
	DefaultDeadline     = time.Second
	DefaultStartTimeout = 10 * time.Second
)

// Plugin is a loaded module with its configuration and its instances.
type Plugin struct {
	host    *Host
	module  *runtime.Module
	info    *abi.PluginInfo
	cfg     Config
	Metrics *abi.Metrics

	mu     sync.Mutex
	idle   []*abi.Instance
	total  int
	free   chan struct{} // slots when MaxInstances > 0
	closed bool

	// The service instance runs the root context's timers and queue notifications, as a
	// plugin's singleton root would in Envoy's main thread.
	svcMu   sync.Mutex
	svc     *abi.Instance
	queueCh chan uint32
	stop    chan struct{}
	done    chan struct{}

	streams sync.Pool
}

// Load compiles code and starts the plugin's first instance, so that a module that fails
// to start or refuses its configuration is rejected here, with the reason.
func (h *Host) Load(ctx context.Context, code []byte, cfg Config) (*Plugin, error) {
	m, err := h.Engine.Compile(ctx, code)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %q: %w", cfg.Name, err)
	}
	p, err := h.NewPlugin(ctx, m, cfg)
	if err != nil {
		_ = m.Close(ctx)
	}
	return p, err
}

// NewPlugin starts a plugin on an already compiled module (several plugins may share one).
func (h *Host) NewPlugin(ctx context.Context, m *runtime.Module, cfg Config) (*Plugin, error) {
	if cfg.Deadline == 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	log := cfg.Log
	if log == nil {
		log = slogLogger{slog.Default()}
	}
	p := &Plugin{
		host: h, module: m, cfg: cfg, Metrics: abi.NewMetrics(),
		queueCh: make(chan uint32, 64), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if cfg.Stats != nil {
		p.Metrics.ExportTo(cfg.Stats)
	}
	p.info = &abi.PluginInfo{
		Name: cfg.Name, RootID: cfg.RootID, VMID: cfg.VMID,
		Config: cfg.Config, VMConfig: cfg.VMConfig,
		LogLevel: cfg.LogLevel, Log: log,
		Shared: h.Shared, Queues: h.Queues, Metrics: p.Metrics,
		Foreign: cfg.Foreign, Caller: cfg.Caller,
		OnQueueReady: p.queueReady,
	}
	if cfg.MaxInstances > 0 {
		p.free = make(chan struct{}, cfg.MaxInstances)
		for range cfg.MaxInstances {
			p.free <- struct{}{}
		}
	}
	p.streams.New = func() any { return &Stream{} }
	svc, err := p.newInstance(ctx)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %q: %w", cfg.Name, err)
	}
	p.svc = svc
	for range min(cfg.MinInstances, max(cfg.MaxInstances, cfg.MinInstances)) {
		inst, err := p.newInstance(ctx)
		if err != nil {
			_ = svc.Close()
			for _, i := range p.idle {
				_ = i.Close()
			}
			return nil, fmt.Errorf("wasm plugin %q: %w", cfg.Name, err)
		}
		p.idle = append(p.idle, inst)
		p.total++
	}
	go p.serve()
	return p, nil
}

// ABI is the ABI version the module declared.
func (p *Plugin) ABI() runtime.ABIVersion { return p.module.ABI }

// newInstance makes an instance and runs its root context's start: on_vm_start, then
// on_configure.
func (p *Plugin) newInstance(ctx context.Context) (*abi.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	mod, err := p.host.Engine.Instantiate(ctx, p.module, runtime.InstanceConfig{
		Stdout: &logWriter{info: p.info, level: abi.LogInfo},
		Stderr: &logWriter{info: p.info, level: abi.LogError},
	})
	if err != nil {
		return nil, err
	}
	// Starting runs under the start timeout rather than the per-callback deadline: a
	// plugin's first callback also initialises its language runtime.
	inst := abi.NewInstance(mod, p.module, p.info, p.cfg.StartTimeout)
	inst.RootID = inst.NewContextID()
	fail := func(err error) (*abi.Instance, error) {
		_ = inst.Close()
		return nil, err
	}
	if err := inst.OnContextCreate(inst.RootID, 0); err != nil {
		return fail(fmt.Errorf("proxy_on_context_create: %w", err))
	}
	ok, err := inst.OnVMStart()
	if err != nil {
		return fail(fmt.Errorf("proxy_on_vm_start: %w", err))
	}
	if !ok {
		return fail(errors.New("proxy_on_vm_start returned false"))
	}
	ok, err = inst.OnConfigure()
	if err != nil {
		return fail(fmt.Errorf("proxy_on_configure: %w", err))
	}
	if !ok {
		return fail(errors.New("proxy_on_configure returned false: the plugin refused its configuration"))
	}
	inst.SetDeadline(p.cfg.Deadline)
	return inst, nil
}

// get takes an idle instance or makes one.
func (p *Plugin) get(ctx context.Context) (*abi.Instance, error) {
	if p.free != nil {
		select {
		case <-p.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.release()
		return nil, errors.New("wasm: plugin closed")
	}
	if n := len(p.idle); n > 0 {
		inst := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return inst, nil
	}
	p.total++
	p.mu.Unlock()
	inst, err := p.newInstance(ctx)
	if err != nil {
		p.mu.Lock()
		p.total--
		p.mu.Unlock()
		p.release()
		return nil, err
	}
	return inst, nil
}

// put gives an instance back, or drops it when it broke: the next get makes a new one.
func (p *Plugin) put(inst *abi.Instance) {
	p.mu.Lock()
	if err := inst.Broken(); err != nil || p.closed {
		p.total--
		p.mu.Unlock()
		if err != nil {
			p.logf(abi.LogError, "instance replaced: %v", err)
		}
		_ = inst.Close()
	} else {
		p.idle = append(p.idle, inst)
		p.mu.Unlock()
	}
	p.release()
}

func (p *Plugin) release() {
	if p.free != nil {
		p.free <- struct{}{}
	}
}

// Instances reports the idle and the total number of stream instances.
func (p *Plugin) Instances() (idle, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle), p.total
}

// Close stops the plugin's timers and closes its idle instances; instances in use are
// closed when their streams end.
func (p *Plugin) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.total -= len(idle)
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	for _, inst := range idle {
		_ = inst.Close()
	}
	p.svcMu.Lock()
	_ = p.svc.Close()
	p.svcMu.Unlock()
}

func (p *Plugin) queueReady(id uint32) {
	select {
	case p.queueCh <- id:
	default:
		// The service goroutine is behind; the plugin drains the queue on the next
		// notification anyway.
	}
}

// serve runs the service instance's ticks and queue notifications.
func (p *Plugin) serve() {
	defer close(p.done)
	var tick *time.Ticker
	var tickC <-chan time.Time
	period := time.Duration(0)
	for {
		p.svcMu.Lock()
		want := p.svc.TickPeriod()
		broken := p.svc.Broken()
		p.svcMu.Unlock()
		if broken != nil {
			want = 0
		}
		if want != period {
			if tick != nil {
				tick.Stop()
				tick, tickC = nil, nil
			}
			if want > 0 {
				tick = time.NewTicker(want)
				tickC = tick.C
			}
			period = want
		}
		select {
		case <-p.stop:
			if tick != nil {
				tick.Stop()
			}
			return
		case <-tickC:
			p.onService(func(i *abi.Instance) error { return i.OnTick() })
		case id := <-p.queueCh:
			p.onService(func(i *abi.Instance) error { return i.OnQueueReady(id) })
		}
	}
}

func (p *Plugin) onService(fn func(*abi.Instance) error) {
	p.svcMu.Lock()
	defer p.svcMu.Unlock()
	if p.svc.Broken() != nil {
		return
	}
	if err := fn(p.svc); err != nil {
		p.logf(abi.LogError, "root context: %v", err)
	}
}

func (p *Plugin) logf(level abi.LogLevel, format string, args ...any) {
	p.info.Log.Log(level, p.info.Name, fmt.Appendf(nil, format, args...))
}

// logWriter turns the plugin's WASI stdout and stderr into log lines, as Envoy does.
type logWriter struct {
	info  *abi.PluginInfo
	level abi.LogLevel
}

func (w *logWriter) Write(b []byte) (int, error) {
	if w.level >= w.info.LogLevel {
		for line := range splitLines(b) {
			w.info.Log.Log(w.level, w.info.Name, line)
		}
	}
	return len(b), nil
}

func splitLines(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			n := len(b)
			for k, c := range b {
				if c == '\n' {
					n = k
					break
				}
			}
			if n > 0 && !yield(b[:n]) {
				return
			}
			b = b[min(n+1, len(b)):]
		}
	}
}

// slogLogger logs through slog, with Envoy's "wasm log <plugin>:" shape.
type slogLogger struct{ l *slog.Logger }

var slogLevels = [...]slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4}

func (s slogLogger) Log(level abi.LogLevel, plugin string, msg []byte) {
	l := slog.LevelError
	if int(level) < len(slogLevels) {
		l = slogLevels[level]
	}
	s.l.Log(context.Background(), l, "wasm log", "plugin", plugin, "msg", string(msg))
}
