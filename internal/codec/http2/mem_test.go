package http2

import (
	"runtime"
	"testing"
	"time"
)

// TestIdleConnMemory bounds the memory an idle connection holds once a request was served
// on it. The heap figure includes the test's raw client (its socket, framer and HPACK
// state), about 2 KiB of it.
func TestIdleConnMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	ts := newTestServer(t, Config{}, &testHandler{})
	const n = 200
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	conns := make([]*rawClient, 0, n)
	for i := 0; i < n; i++ {
		rc := dialRaw(t, ts.addr)
		rc.headers(1, true, getFields...)
		rc.waitResponse(1)
		conns = append(conns, rc)
	}
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	heap := (int64(ms1.HeapInuse) - int64(ms0.HeapInuse)) / n
	stack := (int64(ms1.StackInuse) - int64(ms0.StackInuse)) / n
	t.Logf("per idle connection: heap %d B, stacks %d B (client sockets and framers included)", heap, stack)
	if heap > 16<<10 {
		t.Errorf("an idle connection holds %d B of heap", heap)
	}
	for _, rc := range conns {
		rc.nc.Close()
	}
}
