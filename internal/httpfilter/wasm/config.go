// Package wasm is the envoy.filters.http.wasm filter: it runs a proxy-wasm plugin (a module
// written against the proxy-wasm ABI, e.g. with proxy-wasm-go-sdk or Higress's wasm-go) on
// every stream, through the host in internal/wasm.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.wasm.v3.Wasm; its config is a PluginConfig:
//
//   - name, root_id: the plugin's name (logs, the plugin_name property) and the root context
//     it runs under.
//   - configuration: what proxy_on_configure reads. A google.protobuf.StringValue or
//     BytesValue is passed without its wrapper, a Struct as JSON, any other message as its
//     serialized bytes, as Envoy does.
//   - vm_config: vm_id (plugins with the same vm_id share shared data and queues), runtime
//     (envoy.wasm.runtime.v8, .wamr, .wasmtime, .wavm or empty: every one runs on wazero;
//     envoy.wasm.runtime.null, which runs plugins linked into Envoy, is rejected), code.local
//     (filename, inline_bytes, inline_string) or code.remote (http_uri, sha256 required,
//     retry_policy's num_retries and back-off; see fetchRemote), configuration
//     (proxy_on_vm_start), and allow_precompiled (accepted; Nuncio always compiles the
//     module itself).
//   - failure_policy (FAIL_CLOSED, the default; FAIL_OPEN; FAIL_RELOAD, which is what every
//     policy does here since a broken instance is always replaced) and the deprecated
//     fail_open.
//
// environment_variables, nack_on_code_cache_miss,
// capability_restriction_config, reload_config and allow_on_headers_stop_iteration: true are
// rejected as not supported.
//
// The module is compiled and started when the configuration is decoded: a file that is not
// wasm, a module without the proxy-wasm exports, one that traps in its start or refuses its
// configuration is rejected there, with its field path, and the configuration in force stays.
// A plugin with the same code and settings as one already loaded is that plugin: an update
// that does not change it keeps its instances and their state.
//
// typed_per_filter_config takes a Wasm message too, and runs that plugin instead for the
// virtual host or route; Envoy's FilterConfig enables or disables the filter per route.
//
// # Stats
//
// The plugin's metrics (proxy_define_metric) are the stats wasmcustom.<name>, as Envoy names
// them.
package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"weak"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.wasm"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

// maxCodeBytes bounds a module read from a file.
const maxCodeBytes = 64 << 20

func init() { httpfilter.Register(Factory{}) }

// Factory builds wasm filter configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL},
		Status: "alpha", Posture: "unknown",
	}
}

// Config is a compiled Wasm filter config: a loaded plugin and what to do when it fails.
type Config struct {
	plug     *plugin
	failOpen bool
	// clusters resolves the clusters the plugin's http_calls name (WithClusters).
	clusters func(string) *cluster.Ref
}

// supported lists the fields NewConfig reads, per message; any other set field is rejected.
var supported = map[protoreflect.FullName][]protoreflect.Name{
	"envoy.extensions.filters.http.wasm.v3.Wasm": {"config"},
	"envoy.extensions.wasm.v3.PluginConfig": {"name", "root_id", "vm_config", "configuration",
		"fail_open", "failure_policy", "allow_on_headers_stop_iteration"},
	"envoy.extensions.wasm.v3.VmConfig":     {"vm_id", "runtime", "code", "configuration", "allow_precompiled"},
	"envoy.config.core.v3.AsyncDataSource":  {"local", "remote"},
	"envoy.config.core.v3.DataSource":       {"filename", "inline_bytes", "inline_string"},
	"envoy.config.core.v3.RemoteDataSource": {"http_uri", "sha256", "retry_policy"},
	"envoy.config.core.v3.HttpUri":          {"uri", "cluster", "timeout"},
	"envoy.config.core.v3.RetryPolicy":      {"retry_back_off", "num_retries"},
	"envoy.config.core.v3.BackoffStrategy":  {"base_interval", "max_interval"},
}

func checkFields(prefix string, m protoreflect.Message) error {
	allowed := supported[m.Descriptor().FullName()]
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		ok := false
		for _, a := range allowed {
			ok = ok || fd.Name() == a
		}
		if !ok {
			err = fmt.Errorf("%s: not supported", name)
			return false
		}
		if fd.Message() != nil && fd.Message().FullName().Parent() != "google.protobuf" && !fd.IsList() && !fd.IsMap() {
			err = checkFields(name+".", v.Message())
		}
		return err == nil
	})
	return err
}

// NewConfig implements httpfilter.Factory: it loads the plugin (compiles the module and
// starts its first instance), so that a plugin that cannot run is rejected here.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	w, ok := m.(*httpwasmv3.Wasm)
	if !ok {
		return nil, fmt.Errorf("wasm: unexpected config type %T", m)
	}
	c, err := newConfig(w)
	if err != nil {
		return nil, fmt.Errorf("wasm: %w", err)
	}
	return c, nil
}

// NewOverride implements httpfilter.Factory: a per-route Wasm runs its own plugin instead.
func (f Factory) NewOverride(m proto.Message) (httpfilter.Config, error) { return f.NewConfig(m) }

func newConfig(w *httpwasmv3.Wasm) (*Config, error) {
	if err := checkFields("", w.ProtoReflect()); err != nil {
		return nil, err
	}
	pc := w.GetConfig()
	if pc == nil {
		return nil, errors.New("config: required")
	}
	if v := pc.GetAllowOnHeadersStopIteration(); v.GetValue() {
		return nil, errors.New("config.allow_on_headers_stop_iteration: true is not supported (headers a plugin stops are held until the body is complete)")
	}
	c := &Config{failOpen: pc.GetFailOpen()}
	switch pc.GetFailurePolicy() {
	case wasmv3.FailurePolicy_UNSPECIFIED, wasmv3.FailurePolicy_FAIL_CLOSED, wasmv3.FailurePolicy_FAIL_RELOAD:
	case wasmv3.FailurePolicy_FAIL_OPEN:
		c.failOpen = true
	default:
		return nil, fmt.Errorf("config.failure_policy: %v not supported", pc.GetFailurePolicy())
	}
	vc := pc.GetVmConfig()
	if vc == nil {
		return nil, errors.New("config.vm_config: required")
	}
	switch vc.GetRuntime() {
	case "", "envoy.wasm.runtime.v8", "envoy.wasm.runtime.wamr", "envoy.wasm.runtime.wasmtime", "envoy.wasm.runtime.wavm":
	case "envoy.wasm.runtime.null":
		return nil, errors.New("config.vm_config.runtime: envoy.wasm.runtime.null runs plugins linked into Envoy; Nuncio has none")
	default:
		return nil, fmt.Errorf("config.vm_config.runtime: unknown runtime %q", vc.GetRuntime())
	}
	code, err := readCode(vc.GetCode())
	if err != nil {
		return nil, fmt.Errorf("config.vm_config.code: %w", err)
	}
	pluginCfg, err := anyBytes(pc.GetConfiguration())
	if err != nil {
		return nil, fmt.Errorf("config.configuration: %w", err)
	}
	vmCfg, err := anyBytes(vc.GetConfiguration())
	if err != nil {
		return nil, fmt.Errorf("config.vm_config.configuration: %w", err)
	}
	c.plug, err = loadPlugin(vm.Config{
		Name: pc.GetName(), RootID: pc.GetRootId(), VMID: vc.GetVmId(),
		Config: pluginCfg, VMConfig: vmCfg,
	}, code)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// readCode reads the module from a local data source, or fetches a remote one.
func readCode(ds *corev3.AsyncDataSource) ([]byte, error) {
	if rs := ds.GetRemote(); rs != nil {
		return fetchRemote(rs)
	}
	local := ds.GetLocal()
	if local == nil {
		return nil, errors.New("one of local, remote required")
	}
	switch s := local.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		f, err := os.Open(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("local.filename: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxCodeBytes+1))
		if err != nil {
			return nil, fmt.Errorf("local.filename: %w", err)
		}
		if len(b) > maxCodeBytes {
			return nil, fmt.Errorf("local.filename: %s is larger than %d bytes", s.Filename, maxCodeBytes)
		}
		return b, nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	}
	return nil, errors.New("local: one of filename, inline_bytes, inline_string required")
}

// anyBytes turns a configuration Any into the bytes the plugin reads, as Envoy does:
// StringValue and BytesValue without their wrapper, Struct as JSON, anything else as its
// serialized value.
func anyBytes(a *anypb.Any) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return a.GetValue(), nil //nolint:nilerr // an unregistered type passes as its bytes, as in Envoy
	}
	switch v := m.(type) {
	case *wrapperspb.StringValue:
		return []byte(v.GetValue()), nil
	case *wrapperspb.BytesValue:
		return v.GetValue(), nil
	case *structpb.Struct:
		// encoding/json sorts keys and writes no spaces: the same configuration gives the
		// same bytes, which keeps the plugin cache keyed by it stable.
		return json.Marshal(v.AsMap())
	}
	return a.GetValue(), nil
}

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody | httpfilter.PhaseRequestTrailers |
		httpfilter.PhaseResponseHeaders | httpfilter.PhaseResponseBody | httpfilter.PhaseResponseTrailers |
		httpfilter.PhaseStreamDone
}

// WithClusters implements hcm.ClusterConfig: http_calls go to the clusters of the chain's
// cluster manager.
func (c *Config) WithClusters(resolve func(string) *cluster.Ref) httpfilter.Config {
	n := *c
	n.clusters = resolve
	// Calls from the root context (a tick) have no stream to carry the resolver.
	c.plug.caller.fallback.Store(&resolve)
	return &n
}

// The process's wasm host, made on first use. Compiled modules are cached on disk under
// the user cache directory (NUNCIO_WASM_CACHE_DIR overrides it; "off" disables it), so a
// restart does not compile the same module again.
var (
	hostOnce sync.Once
	host     *vm.Host
	hostErr  error
)

func theHost() (*vm.Host, error) {
	hostOnce.Do(func() {
		host, hostErr = vm.NewHost(context.Background(), runtime.Config{CacheDir: cacheDir()})
	})
	return host, hostErr
}

func cacheDir() string {
	dir := os.Getenv("NUNCIO_WASM_CACHE_DIR")
	switch dir {
	case "off":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(base, "nuncio", "wasm")
	}
	if os.MkdirAll(dir, 0o755) != nil {
		return ""
	}
	return dir
}

// plugin is one loaded plugin, shared by every Config with the same code and settings.
type plugin struct {
	vm     *vm.Plugin
	caller *caller
}

// The plugins loaded, by key. An entry lives while a Config holds its plugin; when the last
// one is collected the plugin closes (closePlugin). The cache's pointers are weak, so the
// cache alone keeps nothing alive.
var (
	cacheMu sync.Mutex
	cache   = map[[32]byte]weak.Pointer[plugin]{}
)

func pluginKey(cfg vm.Config, code []byte) [32]byte {
	h := sha256.New()
	for _, part := range [][]byte{code, []byte(cfg.Name), []byte(cfg.RootID), []byte(cfg.VMID), cfg.Config, cfg.VMConfig} {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(part))))
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// loadPlugin returns the plugin for cfg and code, loading it unless a live one exists.
func loadPlugin(cfg vm.Config, code []byte) (*plugin, error) {
	key := pluginKey(cfg, code)
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if p := cache[key].Value(); p != nil {
		return p, nil
	}
	h, err := theHost()
	if err != nil {
		return nil, err
	}
	// The caller and the logger must not refer to p: the plugin's own goroutine holds them,
	// and p has to become unreachable for its cleanup to run.
	c := &caller{}
	sc := stats.Default.Scope("")
	cfg.Caller = c
	cfg.LogLevel = abi.LogInfo
	cfg.Stats = sc
	ctx := context.Background()
	mod, err := h.Engine.Compile(ctx, code)
	if err != nil {
		sc.Release()
		return nil, fmt.Errorf("config.vm_config.code: %w", err)
	}
	vp, err := h.NewPlugin(ctx, mod, cfg)
	if err != nil {
		_ = mod.Close(ctx)
		sc.Release()
		// The module is sound but did not start: its start, or its configuration.
		return nil, fmt.Errorf("config: %w", err)
	}
	p := &plugin{vm: vp, caller: c}
	wp := weak.Make(p)
	cache[key] = wp
	goruntime.AddCleanup(p, func(wp weak.Pointer[plugin]) { closePlugin(key, wp, vp, sc) }, wp)
	return p, nil
}

// closePlugin runs once no Config holds the plugin any more.
func closePlugin(key [32]byte, wp weak.Pointer[plugin], vp *vm.Plugin, sc *stats.Scope) {
	cacheMu.Lock()
	if cache[key] == wp {
		delete(cache, key)
	}
	cacheMu.Unlock()
	vp.Close()
	sc.Release()
}

var _ httpfilter.Factory = Factory{}
