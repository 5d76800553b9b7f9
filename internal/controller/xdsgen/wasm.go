package xdsgen

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// wasmPrefix names a plugin's filter in the chain: wasm/<plugin name>.
const wasmPrefix = "wasm/"

// Plugins are envoy.filters.http.wasm filters, one per plugin name used by a route of the
// listener, in the order the routes first name them, installed disabled; each route that
// runs a plugin enables it with its own code and configuration (FilterConfig), so routes may
// configure one plugin differently and the others do not run it.
func init() {
	register(&feature{
		name: "wasm", order: 170,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			var out []*hcmv3.HttpFilter
			seen := map[string]bool{}
			l.Routes(func(r *ir.Route) {
				for i := range r.Plugins {
					p := &r.Plugins[i]
					if seen[p.Name] {
						continue
					}
					seen[p.Name] = true
					out = append(out, &hcmv3.HttpFilter{
						Name: wasmPrefix + p.Name, Disabled: true,
						ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(wasmPlugin(p))},
					})
				}
			})
			return out
		},
		route: func(out *routev3.Route, r *ir.Route) {
			for i := range r.Plugins {
				p := &r.Plugins[i]
				perFilter(out, wasmPrefix+p.Name, typed(&routev3.FilterConfig{Config: typed(wasmPlugin(p))}))
			}
		},
	})
}

func wasmPlugin(p *ir.Plugin) *httpwasmv3.Wasm {
	pc := &wasmv3.PluginConfig{
		Name: p.Name, RootId: p.RootID,
		Vm: &wasmv3.PluginConfig_VmConfig{VmConfig: &wasmv3.VmConfig{
			VmId:    p.Name,
			Runtime: "envoy.wasm.runtime.v8",
			Code: &corev3.AsyncDataSource{Specifier: &corev3.AsyncDataSource_Local{Local: &corev3.DataSource{
				Specifier: &corev3.DataSource_Filename{Filename: p.File},
			}}},
		}},
	}
	if p.Config != "" {
		pc.Configuration = typed(wrapperspb.String(p.Config))
	}
	if p.FailOpen {
		pc.FailurePolicy = wasmv3.FailurePolicy_FAIL_OPEN
	}
	return &httpwasmv3.Wasm{Config: pc}
}
