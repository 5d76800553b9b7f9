package admin

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// servePprof serves Go's runtime profiles, for finding where a data plane's CPU and memory go
// under a real configuration (`go tool pprof http://ADMIN/debug/pprof/heap`). They are as
// exposed as the rest of the admin API, which listens on loopback by default.
func (s *Server) servePprof(w http.ResponseWriter, r *http.Request) {
	switch strings.TrimPrefix(r.URL.Path, "/debug/pprof/") {
	case "cmdline":
		pprof.Cmdline(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "symbol":
		pprof.Symbol(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		// The index page, and the named profiles (heap, allocs, goroutine, block, mutex, …).
		pprof.Index(w, r)
	}
}
