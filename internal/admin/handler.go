package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

// endpoint is one admin command. The table drives routing, the index page and the 404 help text,
// so a new endpoint cannot be served without being listed.
type endpoint struct {
	path string
	help string
	// mutates marks endpoints that change the server's state. They answer only POST, as in
	// Envoy, so that a crawler, a prefetching browser or an <img> tag cannot trigger them.
	mutates bool
	// readWrite marks endpoints that show state on GET and change it on POST (/logging); the
	// handler refuses a change by GET.
	readWrite bool
	serve     func(s *Server, w http.ResponseWriter, r *http.Request)
}

// endpoints are in alphabetical order, as Envoy lists its own.
var endpoints = []endpoint{
	{path: "/clusters", help: "upstream cluster status; format=json for JSON", serve: (*Server).serveClusters},
	{path: "/config_dump", help: "dump the current configuration as JSON; resource=<field> selects one kind of resource, mask=<paths> trims it", serve: (*Server).serveConfigDump},
	{path: "/dashboard", help: "live dashboard: traffic, latency, listeners, routes, clusters and config", serve: (*Server).serveDashboard},
	{path: "/debug/pprof/", help: "Go runtime profiles (pprof): heap, profile?seconds=N for CPU, goroutine, allocs, trace", serve: (*Server).servePprof},
	{path: "/drain_listeners", help: "drain listeners; graceful lets open connections finish within the drain time", mutates: true, serve: (*Server).serveDrainListeners},
	{path: "/healthcheck/fail", help: "cause the server to fail health checks", mutates: true, serve: (*Server).serveHealthFail},
	{path: "/healthcheck/ok", help: "cause the server to pass health checks", mutates: true, serve: (*Server).serveHealthOK},
	{path: "/listeners", help: "print listener info; format=json for JSON", serve: (*Server).serveListeners},
	{path: "/logging", help: "print log levels; POST level=<level> to change the level", readWrite: true, serve: (*Server).serveLogging},
	{path: "/memory", help: "print current allocation/heap usage", serve: (*Server).serveMemory},
	{path: "/quitquitquit", help: "exit the server", mutates: true, serve: (*Server).serveQuit},
	{path: "/ready", help: "print server state, return 200 if LIVE, otherwise return 503", serve: (*Server).serveReady},
	{path: "/reopen_logs", help: "reopen access log files (after log rotation)", mutates: true, serve: (*Server).serveReopenLogs},
	{path: "/reset_counters", help: "reset all counters to zero", mutates: true, serve: (*Server).serveResetCounters},
	{path: "/runtime", help: "print runtime values", serve: (*Server).serveRuntime},
	{path: "/server_info", help: "print server version/status information", serve: (*Server).serveServerInfo},
	{path: "/stats", help: "print server stats; filter=<regex>, usedonly, type=<type>, format=json or prometheus", serve: (*Server).serveStats},
	{path: "/stats/prometheus", help: "print server stats in Prometheus format; filter=<regex>, usedonly", serve: (*Server).servePrometheus},
}

// crossOrigin has no trusted origins: the admin page posts to its own origin.
var crossOrigin = http.NewCrossOriginProtection()

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", s.serveIndex)
	for _, ep := range endpoints {
		mux.Handle(ep.path, s.guard(ep))
	}
	mux.Handle("/dashboard/", s.guard(endpoint{path: "/dashboard/", serve: (*Server).serveDashboardAsset}))
	mux.HandleFunc("/", s.serveNotFound)
	return mux
}

// guard enforces the endpoint's method, refuses cross-site browser requests to mutating
// endpoints, and sets the headers every admin answer carries.
func (s *Server) guard(ep endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		commonHeaders(w)
		switch {
		case ep.readWrite && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost:
			w.Header().Set("Allow", "GET, HEAD, POST")
			textError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed.", r.Method))
			return
		case ep.readWrite:
			if r.Method == http.MethodPost {
				if err := crossOrigin.Check(r); err != nil {
					s.log.Warn("cross-origin request to a mutating admin path refused", "path", ep.path, "remote", r.RemoteAddr)
					textError(w, http.StatusForbidden, err.Error())
					return
				}
			}
		case ep.mutates && r.Method != http.MethodPost:
			s.log.Warn("admin path mutates state and was not POSTed", "path", ep.path, "method", r.Method)
			w.Header().Set("Allow", http.MethodPost)
			textError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed, POST required.", r.Method))
			return
		case !ep.mutates && r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			textError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed, GET required.", r.Method))
			return
		case ep.mutates:
			// POST alone does not stop a web page the operator happens to visit from submitting
			// a form to 127.0.0.1:9901/quitquitquit; the browser's Sec-Fetch-Site and Origin
			// headers do. Clients that send neither (curl, probes, scripts) pass.
			if err := crossOrigin.Check(r); err != nil {
				s.log.Warn("cross-origin request to a mutating admin path refused", "path", ep.path, "remote", r.RemoteAddr)
				textError(w, http.StatusForbidden, err.Error())
				return
			}
		}
		ep.serve(s, w, r)
	})
}

// commonHeaders are Envoy's: the answers describe the moment they are made, and must not be
// sniffed into something executable.
func commonHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, max-age=0")
	h.Set("X-Content-Type-Options", "nosniff")
}

const (
	contentText = "text/plain; charset=UTF-8"
	contentJSON = "application/json"
	contentHTML = "text/html; charset=UTF-8"
)

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", contentText)
	// A known length lets a flushed answer be complete on the wire before the handler returns,
	// which /quitquitquit relies on.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func textError(w http.ResponseWriter, code int, msg string) { text(w, code, msg+"\n") }

// writeJSON writes v indented, as Envoy pretty-prints its admin JSON.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		textError(w, http.StatusInternalServerError, "json: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", contentJSON)
	_, _ = w.Write(append(b, '\n'))
}

// format reads the format query parameter shared by /clusters and /listeners. It reports false,
// having answered 400, for a format it does not know.
func format(w http.ResponseWriter, r *http.Request) (jsonOut, ok bool) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "text":
		return false, true
	case "json":
		return true, true
	default:
		textError(w, http.StatusBadRequest, fmt.Sprintf("invalid format %q: want text or json", f))
		return false, false
	}
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	st := s.state(s.opts.Source.ServerInfo())
	code := http.StatusOK
	if st != StateLive {
		code = http.StatusServiceUnavailable
	}
	text(w, code, st.String()+"\n")
}

func (s *Server) serveServerInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.serverInfoJSON(s.opts.Source.ServerInfo()))
}

// serveClusters writes Envoy's text format, one "cluster::host::field::value" line per fact, or
// envoy.admin.v3.Clusters as JSON.
func (s *Server) serveClusters(w http.ResponseWriter, r *http.Request) {
	asJSON, ok := format(w, r)
	if !ok {
		return
	}
	clusters := s.opts.Source.Clusters()
	if asJSON {
		writeJSON(w, clustersJSON(clusters))
		return
	}
	var b strings.Builder
	for _, c := range clusters {
		fmt.Fprintf(&b, "%s::added_via_api::%t\n", c.Name, c.AddedViaAPI)
		for _, h := range c.Hosts {
			p := c.Name + "::" + h.Address + "::"
			fmt.Fprintf(&b, "%scx_active::%d\n", p, h.ActiveConnections)
			fmt.Fprintf(&b, "%scx_total::%d\n", p, h.TotalConnections)
			fmt.Fprintf(&b, "%srq_active::%d\n", p, h.ActiveRequests)
			fmt.Fprintf(&b, "%shealth_flags::%s\n", p, h.Health)
			fmt.Fprintf(&b, "%sweight::%d\n", p, h.Weight)
		}
	}
	text(w, http.StatusOK, b.String())
}

// serveListeners writes Envoy's text format, one "name::address" line per listener, or
// envoy.admin.v3.Listeners as JSON.
func (s *Server) serveListeners(w http.ResponseWriter, r *http.Request) {
	asJSON, ok := format(w, r)
	if !ok {
		return
	}
	listeners := s.opts.Source.Listeners()
	if asJSON {
		writeJSON(w, listenersJSON(listeners))
		return
	}
	var b strings.Builder
	for _, l := range listeners {
		fmt.Fprintf(&b, "%s::%s\n", l.Name, l.Address)
	}
	text(w, http.StatusOK, b.String())
}

func (s *Server) serveHealthFail(w http.ResponseWriter, r *http.Request) {
	if !s.failed.Swap(true) {
		s.log.Info("health checks now fail", "remote", r.RemoteAddr)
	}
	text(w, http.StatusOK, "OK\n")
}

func (s *Server) serveHealthOK(w http.ResponseWriter, r *http.Request) {
	if s.failed.Swap(false) {
		s.log.Info("health checks now pass", "remote", r.RemoteAddr)
	}
	text(w, http.StatusOK, "OK\n")
}

// serveQuit answers before it calls Quit, because Quit may close this server, and with it the
// connection the answer goes out on.
func (s *Server) serveQuit(w http.ResponseWriter, r *http.Request) {
	if s.opts.Quit == nil {
		textError(w, http.StatusNotImplemented, "quitquitquit: not available in this mode")
		return
	}
	s.log.Info("quit requested", "remote", r.RemoteAddr)
	text(w, http.StatusOK, "OK\n")
	// A failed flush means the client has gone; the quit stands either way.
	_ = http.NewResponseController(w).Flush()
	go s.quit.Do(s.opts.Quit)
}

func (s *Server) serveNotFound(w http.ResponseWriter, _ *http.Request) {
	commonHeaders(w)
	var b strings.Builder
	b.WriteString("invalid path. admin commands are:\n")
	for _, ep := range endpoints {
		fmt.Fprintf(&b, "  %s: %s\n", ep.path, ep.help)
	}
	text(w, http.StatusNotFound, b.String())
}

var indexTemplate = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Nuncio admin</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:.3em 1em}form{margin:0}</style></head>
<body>
<h1>Nuncio admin</h1>
{{if .Version}}<p>Version {{.Version}}</p>{{end}}
<table>
<tr><th>Command</th><th>Description</th></tr>
{{range .Endpoints}}<tr><td>{{if .Mutates}}<form action="{{.Path}}" method="post"><button type="submit">{{.Path}}</button></form>{{else}}<a href="{{.Path}}">{{.Path}}</a>{{end}}</td><td>{{.Help}}</td></tr>
{{end}}</table>
</body>
</html>
`))

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	commonHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed, GET required.", r.Method))
		return
	}
	type row struct {
		Path, Help string
		Mutates    bool
	}
	data := struct {
		Version   string
		Endpoints []row
	}{Version: s.version(s.opts.Source.ServerInfo())}
	for _, ep := range endpoints {
		data.Endpoints = append(data.Endpoints, row{Path: ep.path, Help: ep.help, Mutates: ep.mutates})
	}
	var b bytes.Buffer
	if err := indexTemplate.Execute(&b, data); err != nil {
		textError(w, http.StatusInternalServerError, "index: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", contentHTML)
	_, _ = w.Write(b.Bytes())
}

// version is the version to report: the Source's when it has one, else the binary's.
func (s *Server) version(info ServerInfo) string {
	if info.Version != "" {
		return info.Version
	}
	return s.opts.Version
}
