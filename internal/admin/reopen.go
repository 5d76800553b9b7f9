package admin

import (
	"net/http"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
)

// serveReopenLogs reopens the access log files, as Envoy's /reopen_logs: logrotate renames a
// file, then this makes the writers start a new one at the configured path.
func (s *Server) serveReopenLogs(w http.ResponseWriter, r *http.Request) {
	accesslog.Reopen()
	s.log.Info("access logs reopened", "remote", r.RemoteAddr)
	text(w, http.StatusOK, "OK\n")
}
