package admin

import (
	"net/http"
	"runtime"
	"strconv"
)

// memoryJSON is envoy.admin.v3.Memory. Envoy reads these from tcmalloc; the Go runtime's
// nearest equivalents stand in for them, so that tools graphing Envoy's /memory graph ours.
type memoryJSON struct {
	// Allocated is the bytes in live heap objects (HeapAlloc).
	Allocated string `json:"allocated"`
	// HeapSize is the heap reserved from the OS (HeapSys).
	HeapSize string `json:"heap_size"`
	// PageheapUnmapped is heap returned to the OS (HeapReleased).
	PageheapUnmapped string `json:"pageheap_unmapped"`
	// PageheapFree is heap held but unused (HeapIdle less HeapReleased).
	PageheapFree string `json:"pageheap_free"`
	// TotalThreadCache is the per-P allocation caches (MCacheInuse), Go's thread caches.
	TotalThreadCache string `json:"total_thread_cache"`
	// TotalPhysicalBytes is all memory obtained from the OS, less what was returned.
	TotalPhysicalBytes string `json:"total_physical_bytes"`
}

func u64(n uint64) string { return strconv.FormatUint(n, 10) }

func (s *Server) serveMemory(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	writeJSON(w, memoryJSON{
		Allocated:          u64(m.HeapAlloc),
		HeapSize:           u64(m.HeapSys),
		PageheapUnmapped:   u64(m.HeapReleased),
		PageheapFree:       u64(m.HeapIdle - m.HeapReleased),
		TotalThreadCache:   u64(m.MCacheInuse),
		TotalPhysicalBytes: u64(m.Sys - m.HeapReleased),
	})
}

// serveRuntime reports Envoy's runtime layers. Nuncio has no runtime overrides, so there are
// none; the answer keeps Envoy's shape for the tools that read it.
func (s *Server) serveRuntime(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, struct {
		Layers  []string       `json:"layers"`
		Entries map[string]any `json:"entries"`
	}{Layers: []string{}, Entries: map[string]any{}})
}

// serveDrainListeners starts draining every listener; ?graceful gives open connections the
// drain time to finish. inboundonly is accepted for Envoy's scripts: every Nuncio listener is
// inbound.
func (s *Server) serveDrainListeners(w http.ResponseWriter, r *http.Request) {
	d, ok := s.opts.Source.(ListenerDrainer)
	if !ok {
		textError(w, http.StatusNotImplemented, "drain_listeners: not available in this mode")
		return
	}
	_, graceful := r.URL.Query()["graceful"]
	if err := d.DrainListeners(graceful); err != nil {
		textError(w, http.StatusInternalServerError, "drain_listeners: "+err.Error())
		return
	}
	s.log.Info("listeners draining", "graceful", graceful, "remote", r.RemoteAddr)
	text(w, http.StatusOK, "OK\n")
}
