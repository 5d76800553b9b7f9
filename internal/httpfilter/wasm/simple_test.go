package wasm_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestSimpleConfigPlugins runs plugins named in the simple config: the front end's filters
// and per-route enabling reach a real listener.
func TestSimpleConfigPlugins(t *testing.T) {
	dir := t.TempDir()
	pluginFile(t, dir, "header_rewrite")
	yaml := fmt.Sprintf(`apiVersion: nuncio.dev/v1alpha1
kind: Config
listeners:
- name: web
  address: 127.0.0.1:%s
  routes:
  - match: {prefix: /plugin}
    backend: echo
    plugins:
    - {name: rewrite, file: header_rewrite.wasm}
  - backend: echo
backends:
- name: echo
  endpoints: ["127.0.0.1:%s"]
`, strings.TrimPrefix(closedAddr(t), "127.0.0.1:"), echo(t))
	r := run(t, dir, yaml)
	url := "http://" + r.addr("web")
	for _, tc := range []struct {
		name, path, want string
	}{
		{name: "route with the plugin", path: "/plugin", want: "best"},
		{name: "route without it", path: "/", want: "orig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(t, "GET", url+tc.path, "", "test", "orig")
			if resp.status != 200 || resp.header.Get("x-echo-test") != tc.want {
				t.Fatalf("%d, x-echo-test %q, want %q", resp.status, resp.header.Get("x-echo-test"), tc.want)
			}
		})
	}
}
