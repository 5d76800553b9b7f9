package wasm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	httpwasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/hcm"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/wasm"
)

var _ hcm.ClusterConfig = (*wasm.Config)(nil)

func decode(t *testing.T, yaml string) (httpfilter.Config, error) {
	t.Helper()
	m := &httpwasmv3.Wasm{}
	if err := envoyconfig.Unmarshal([]byte(yaml), m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return wasm.Factory{}.NewConfig(m)
}

func TestNewConfig(t *testing.T) {
	dir := t.TempDir()
	good := pluginFile(t, dir, "header_rewrite")
	bad := pluginFile(t, dir, "bad")
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("this is not wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	code := func(file string) string { return `{local: {filename: "` + file + `"}}` }
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "minimal", yaml: `{config: {vm_config: {code: ` + code(good) + `}}}`},
		{
			name: "every supported field",
			yaml: `{config: {name: p, root_id: r, fail_open: true, failure_policy: FAIL_RELOAD,
				allow_on_headers_stop_iteration: false,
				configuration: {"@type": type.googleapis.com/google.protobuf.Struct, value: {a: 1, b: [x]}},
				vm_config: {vm_id: v, runtime: envoy.wasm.runtime.wasmtime, allow_precompiled: true, code: ` + code(good) + `,
				configuration: {"@type": type.googleapis.com/google.protobuf.BytesValue, value: "AQI="}}}}`,
		},
		{name: "inline bytes", yaml: `{config: {vm_config: {code: {local: {inline_bytes: "AGFzbQEAAAA="}}}}}`,
			wantErr: "config.vm_config.code"},
		{name: "no config", yaml: `{}`, wantErr: "config: required"},
		{name: "no vm_config", yaml: `{config: {name: p}}`, wantErr: "config.vm_config: required"},
		{name: "null runtime", yaml: `{config: {vm_config: {runtime: envoy.wasm.runtime.null, code: ` + code(good) + `}}}`,
			wantErr: "config.vm_config.runtime: envoy.wasm.runtime.null"},
		{name: "unknown runtime", yaml: `{config: {vm_config: {runtime: envoy.wasm.runtime.lua, code: ` + code(good) + `}}}`,
			wantErr: `config.vm_config.runtime: unknown runtime "envoy.wasm.runtime.lua"`},
		{name: "remote code", yaml: `{config: {vm_config: {code: {remote: {http_uri: {uri: "http://127.0.0.1/p.wasm", cluster: c, timeout: 1s}, sha256: ab}}}}}`,
			wantErr: `config.vm_config.code: remote.sha256: "ab" is not a hex SHA-256`},
		{name: "environment variables", yaml: `{config: {vm_config: {code: ` + code(good) + `, environment_variables: {key_values: {a: b}}}}}`,
			wantErr: "config.vm_config.environment_variables: not supported"},
		{name: "reload config", yaml: `{config: {reload_config: {}, vm_config: {code: ` + code(good) + `}}}`,
			wantErr: "config.reload_config: not supported"},
		{name: "headers stop iteration", yaml: `{config: {allow_on_headers_stop_iteration: true, vm_config: {code: ` + code(good) + `}}}`,
			wantErr: "config.allow_on_headers_stop_iteration"},
		{name: "missing file", yaml: `{config: {vm_config: {code: ` + code(filepath.Join(dir, "nope.wasm")) + `}}}`,
			wantErr: "config.vm_config.code: local.filename"},
		{name: "not wasm", yaml: `{config: {vm_config: {code: ` + code(text) + `}}}`,
			wantErr: "config.vm_config.code"},
		{name: "no code", yaml: `{config: {vm_config: {code: {local: {}}}}}`,
			wantErr: "config.vm_config.code: local: one of filename"},
		{name: "plugin traps in on_configure", yaml: `{config: {configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: trap-configure}, vm_config: {code: ` + code(bad) + `}}}`,
			wantErr: "config: wasm plugin \"\": proxy_on_configure"},
		{name: "plugin refuses its configuration", yaml: `{config: {configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: refuse}, vm_config: {code: ` + code(bad) + `}}}`,
			wantErr: "refused its configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := decode(t, tc.yaml)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c == nil {
					t.Fatal("nil config")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "wasm: ") {
				t.Fatalf("error %v, want one starting wasm: and containing %q", err, tc.wantErr)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

// TestBadUpdateKeepsRunningConfig applies configs whose plugin cannot load to a running
// server: each is rejected naming the listener, the filter and the field, and the plugin in
// force keeps serving.
func TestBadUpdateKeepsRunningConfig(t *testing.T) {
	dir := t.TempDir()
	rewrite := pluginFile(t, dir, "header_rewrite")
	text := filepath.Join(dir, "plugin.txt")
	if err := os.WriteFile(text, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	clusters := clustersYAML(echo(t), "1")
	config := func(plugin string) string {
		return "static_resources:\n  listeners:" + listenerYAML("main", false, plugin, nil) + clusters
	}
	r := run(t, dir, config(wasmConfig("rewrite", rewrite, "", "")))
	url := "http://" + r.addr("main") + "/"
	for _, tc := range []struct {
		name    string
		plugin  string
		wantErr string
	}{
		{name: "not a wasm file", plugin: wasmConfig("rewrite", text, "", ""), wantErr: "config.vm_config.code"},
		{name: "null runtime", plugin: strings.Replace(wasmConfig("rewrite", rewrite, "", ""), "envoy.wasm.runtime.v8", "envoy.wasm.runtime.null", 1),
			wantErr: "config.vm_config.runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.reload(t, config(tc.plugin))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "plugin") {
				t.Fatalf("reload error %v, want one naming the filter and %q", err, tc.wantErr)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			resp := do(t, "GET", url, "", "test", "orig")
			if resp.status != 200 || resp.header.Get("x-echo-test") != "best" {
				t.Fatalf("after the rejected update: %d, x-echo-test %q; want the running plugin's rewrite", resp.status, resp.header.Get("x-echo-test"))
			}
		})
	}
}
