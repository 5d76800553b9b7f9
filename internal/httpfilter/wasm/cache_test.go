package wasm

import (
	"context"
	"fmt"
	goruntime "runtime"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"
)

func cached(key [32]byte) bool {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	_, ok := cache[key]
	return ok
}

// TestPluginCache checks that a configuration equal to a loaded one shares its plugin, and
// that plugins updated again and again are closed once no configuration holds them, so
// updates do not pile up instances.
func TestPluginCache(t *testing.T) {
	code := wasmtest.Build(t, "header_rewrite")
	cfg := vm.Config{Name: "cache-test", Config: []byte("v0")}
	p, err := loadPlugin(cfg, code)
	if err != nil {
		t.Fatal(err)
	}
	again, err := loadPlugin(cfg, code)
	if err != nil {
		t.Fatal(err)
	}
	if again != p {
		t.Fatal("an equal configuration loaded a second plugin")
	}
	var keys [][32]byte
	var plugins []*vm.Plugin
	for n := range 5 {
		c := vm.Config{Name: "cache-test", Config: fmt.Appendf(nil, "v%d", n+1)}
		q, err := loadPlugin(c, code)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, pluginKey(c, code))
		plugins = append(plugins, q.vm)
	}
	// Only p is still held.
	wait.For(t, "the dropped plugins to close", func() bool {
		goruntime.GC()
		for _, k := range keys {
			if cached(k) {
				return false
			}
		}
		return true
	})
	for i, vp := range plugins {
		if s, err := vp.NewStream(context.Background()); err == nil {
			s.Close()
			t.Errorf("plugin %d still serves streams after it was dropped", i)
		}
	}
	if !cached(pluginKey(cfg, code)) {
		t.Error("the plugin still held was dropped")
	}
	goruntime.KeepAlive(p)
}
