package admin

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strings"
)

// Envoy's level names, most verbose first, and the slog levels they map to. slog has no trace,
// critical or off; they sit beyond debug and error so that choosing them still narrows or
// widens what is logged the way an Envoy operator expects.
var logLevels = []struct {
	name  string
	level slog.Level
}{
	{"trace", slog.LevelDebug - 4},
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warning", slog.LevelWarn},
	{"error", slog.LevelError},
	{"critical", slog.LevelError + 4},
	{"off", slog.Level(math.MaxInt32)},
}

// parseLevel accepts Envoy's names and slog's ("warn").
func parseLevel(s string) (slog.Level, bool) {
	s = strings.ToLower(s)
	if s == "warn" {
		s = "warning"
	}
	for _, l := range logLevels {
		if l.name == s {
			return l.level, true
		}
	}
	return 0, false
}

// levelName is the Envoy name of the most verbose level that l still logs.
func levelName(l slog.Level) string {
	name := logLevels[0].name
	for _, ll := range logLevels {
		if ll.level <= l {
			name = ll.name
		}
	}
	return name
}

// loggerName is the one logger Nuncio has. Envoy has one per component; scripts that set
// them all with ?level= work unchanged, and naming this one (?nuncio=debug) works too.
const loggerName = "nuncio"

// serveLogging lists the log levels (GET, or POST without parameters) and, on POST with
// level=<level> or nuncio=<level>, sets the process's level.
func (s *Server) serveLogging(w http.ResponseWriter, r *http.Request) {
	lv := s.opts.LogLevel
	if lv == nil {
		textError(w, http.StatusNotImplemented, "logging: the log level cannot be changed in this mode")
		return
	}
	q := r.URL.Query()
	if len(q) > 0 {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			textError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed, POST required.", r.Method))
			return
		}
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) != 1 || (keys[0] != "level" && keys[0] != loggerName) {
			textError(w, http.StatusNotFound, loggingUsage())
			return
		}
		level, ok := parseLevel(q.Get(keys[0]))
		if !ok {
			textError(w, http.StatusNotFound, loggingUsage())
			return
		}
		old := lv.Level()
		lv.Set(level)
		s.log.Info("log level changed", "from", levelName(old), "to", levelName(level), "remote", r.RemoteAddr)
	}
	text(w, http.StatusOK, "active loggers:\n  "+loggerName+": "+levelName(lv.Level())+"\n")
}

func loggingUsage() string {
	names := make([]string, len(logLevels))
	for i, l := range logLevels {
		names[i] = l.name
	}
	return "usage: /logging?level=<level> or /logging?" + loggerName + "=<level>\nlevels: " + strings.Join(names, ", ")
}
