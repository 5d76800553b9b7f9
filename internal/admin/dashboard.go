package admin

import (
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// The dashboard is one page and its script and style, embedded so the binary serves it with
// no network access: the admin listener is often reachable only from the host itself.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardHistory is how many samples the charts keep: five minutes at one a second.
const dashboardHistory = 300

// minSampleGap keeps two open dashboards polling each second from halving the sample spacing.
const minSampleGap = 900 * time.Millisecond

// dashboard holds the samples the charts are drawn from. A sample is taken when the page asks
// for data, so nothing runs while nobody is looking.
type dashboard struct {
	mu      sync.Mutex
	samples []sample
}

// sample is the request totals at one moment.
type sample struct {
	at       time.Time
	requests uint64
	errors   uint64 // 5xx responses
	latency  stats.Snapshot
}

func (s *Server) serveDashboard(w http.ResponseWriter, r *http.Request) {
	s.serveEmbedded(w, r, "dashboard/index.html")
}

// serveDashboardAsset serves /dashboard/data and the page's embedded files.
func (s *Server) serveDashboardAsset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, "Method "+r.Method+" not allowed, GET required.")
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/dashboard/")
	if name == "data" {
		writeJSON(w, s.dashboardData(time.Now()))
		return
	}
	if name == "" || name == "index.html" || strings.Contains(name, "/") {
		textError(w, http.StatusNotFound, "no such dashboard file")
		return
	}
	s.serveEmbedded(w, r, "dashboard/"+name)
}

var contentTypes = map[string]string{
	".html": contentHTML,
	".js":   "text/javascript; charset=UTF-8",
	".css":  "text/css; charset=UTF-8",
	".svg":  "image/svg+xml",
}

func (s *Server) serveEmbedded(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(dashboardFiles, name)
	if err != nil {
		textError(w, http.StatusNotFound, "no such dashboard file")
		return
	}
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	}
	// The page loads only its own files and talks only to its own origin.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// dashboardData is everything the page shows, in one answer per refresh.
type dashboardData struct {
	Now       int64             `json:"now"` // Unix milliseconds
	Server    dashServer        `json:"server"`
	Config    dashConfig        `json:"config"`
	Totals    dashTotals        `json:"totals"`
	Series    []dashPoint       `json:"series"`
	Listeners []dashListener    `json:"listeners"`
	Routes    []dashRouteConfig `json:"routes"`
	Clusters  []dashCluster     `json:"clusters"`
}

type dashServer struct {
	Version       string `json:"version"`
	State         string `json:"state"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

type dashConfig struct {
	Version   string         `json:"version"`
	AppliedAt string         `json:"applied_at,omitempty"`
	Rejection *dashRejection `json:"last_rejection"`
}

type dashRejection struct {
	At     string `json:"at"`
	Reason string `json:"reason"`
}

// dashTotals are counter values as /stats shows them, summed over connection managers.
type dashTotals struct {
	// Requests is the sum of http.<stat_prefix>.downstream_rq_total.
	Requests uint64 `json:"downstream_rq_total"`
	// Errors is the sum of http.<stat_prefix>.downstream_rq_5xx.
	Errors uint64 `json:"downstream_rq_5xx"`
	// ActiveConnections is the sum over listeners.
	ActiveConnections uint64 `json:"active_connections"`
}

// dashPoint is the traffic between two samples. Latencies are null when no request finished.
type dashPoint struct {
	T         int64      `json:"t"`
	RPS       float64    `json:"rps"`
	ErrorRate float64    `json:"error_rate"`
	P50       *jsonFloat `json:"p50"`
	P90       *jsonFloat `json:"p90"`
	P99       *jsonFloat `json:"p99"`
}

type dashListener struct {
	Name              string   `json:"name"`
	Address           string   `json:"address"`
	ActiveConnections uint64   `json:"active_connections"`
	StatPrefixes      []string `json:"stat_prefixes"`
	Requests          uint64   `json:"downstream_rq_total"`
}

type dashRouteConfig struct {
	Name         string      `json:"name"`
	Listener     string      `json:"listener"`
	StatPrefix   string      `json:"stat_prefix"`
	VirtualHosts []dashVHost `json:"virtual_hosts"`
}

type dashVHost struct {
	Name    string      `json:"name"`
	Domains []string    `json:"domains"`
	Routes  []dashRoute `json:"routes"`
}

type dashRoute struct {
	Name   string `json:"name,omitempty"`
	Match  string `json:"match"`
	Action string `json:"action"`
}

type dashCluster struct {
	Name        string     `json:"name"`
	AddedViaAPI bool       `json:"added_via_api"`
	Requests    uint64     `json:"upstream_rq_total"`
	Healthy     int        `json:"healthy"`
	Hosts       []dashHost `json:"hosts"`
}

type dashHost struct {
	Address           string `json:"address"`
	Health            string `json:"health"`
	Healthy           bool   `json:"healthy"`
	Weight            uint32 `json:"weight"`
	ActiveRequests    uint64 `json:"active_requests"`
	ActiveConnections uint64 `json:"active_connections"`
}

func (s *Server) dashboardData(now time.Time) dashboardData {
	src := s.opts.Source
	info := src.ServerInfo()
	d := dashboardData{
		Now: now.UnixMilli(),
		Server: dashServer{
			Version: s.version(info), State: s.state(info).String(),
			UptimeSeconds: int64(info.UptimeCurrentEpoch / time.Second),
		},
		Listeners: []dashListener{}, Routes: []dashRouteConfig{}, Clusters: []dashCluster{},
	}
	if cr, ok := src.(ConfigReporter); ok {
		cs := cr.ConfigStatus()
		d.Config.Version = cs.Version
		if !cs.AppliedAt.IsZero() {
			d.Config.AppliedAt = cs.AppliedAt.UTC().Format(time.RFC3339)
		}
		if rj := cs.LastRejection; rj != nil {
			d.Config.Rejection = &dashRejection{At: rj.At.UTC().Format(time.RFC3339), Reason: rj.Reason}
		}
	}

	all := s.listStats()
	var cur sample
	cur.at = now
	byName := make(map[string]int64, 64)
	for i := range all {
		st := &all[i]
		name := st.Name
		switch {
		case strings.HasPrefix(name, "http.") && st.Kind == stats.KindCounter:
			if p, ok := strings.CutSuffix(name, ".downstream_rq_total"); ok {
				cur.requests += uint64(st.Value)
				byName[p] = st.Value
			} else if strings.HasSuffix(name, ".downstream_rq_5xx") {
				cur.errors += uint64(st.Value)
			}
		case strings.HasPrefix(name, "http.") && st.Kind == stats.KindHistogram && strings.HasSuffix(name, ".downstream_rq_time"):
			addSnapshot(&cur.latency, &st.Histogram)
		case strings.HasPrefix(name, "cluster.") && strings.HasSuffix(name, ".upstream_rq_total") && st.Kind == stats.KindCounter:
			byName[name] = st.Value
		}
	}
	d.Totals.Requests, d.Totals.Errors = cur.requests, cur.errors
	d.Series = s.dash.record(cur)

	// Listeners, and the route tables of their connection managers, from the config dump.
	var lcfg []listenerConfig
	if b, err := src.ConfigDump(); err == nil {
		lcfg, d.Routes = parseDumpRoutes(b)
	}
	prefixes := map[string][]string{}
	for _, l := range lcfg {
		prefixes[l.name] = l.statPrefixes
	}
	for _, l := range src.Listeners() {
		dl := dashListener{Name: l.Name, Address: l.Address, ActiveConnections: l.ActiveConnections, StatPrefixes: prefixes[l.Name]}
		if dl.StatPrefixes == nil {
			dl.StatPrefixes = []string{}
		}
		for _, p := range dl.StatPrefixes {
			dl.Requests += uint64(byName["http."+p])
		}
		d.Totals.ActiveConnections += l.ActiveConnections
		d.Listeners = append(d.Listeners, dl)
	}
	for _, c := range src.Clusters() {
		dc := dashCluster{Name: c.Name, AddedViaAPI: c.AddedViaAPI, Requests: uint64(byName["cluster."+c.Name+".upstream_rq_total"]), Hosts: []dashHost{}}
		for _, h := range c.Hosts {
			healthy := h.Health == 0
			if healthy {
				dc.Healthy++
			}
			dc.Hosts = append(dc.Hosts, dashHost{
				Address: h.Address, Health: h.Health.String(), Healthy: healthy, Weight: h.Weight,
				ActiveRequests: h.ActiveRequests, ActiveConnections: h.ActiveConnections,
			})
		}
		d.Clusters = append(d.Clusters, dc)
	}
	return d
}

func addSnapshot(dst, src *stats.Snapshot) {
	for i := range dst.Cumulative {
		dst.Cumulative[i] += src.Cumulative[i]
	}
	dst.Count += src.Count
	dst.Sum += src.Sum
}

// record adds cur to the history (unless the last sample is too recent) and returns the
// traffic between consecutive samples.
func (d *dashboard) record(cur sample) []dashPoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.samples); n == 0 || cur.at.Sub(d.samples[n-1].at) >= minSampleGap {
		if n == dashboardHistory {
			copy(d.samples, d.samples[1:])
			d.samples = d.samples[:n-1]
		}
		d.samples = append(d.samples, cur)
	}
	points := make([]dashPoint, 0, len(d.samples))
	for i := 1; i < len(d.samples); i++ {
		points = append(points, between(&d.samples[i-1], &d.samples[i]))
	}
	return points
}

// delta is b-a for a counter, or b when the counter went down (reset_counters) in between.
func delta(a, b uint64) uint64 {
	if b < a {
		return b
	}
	return b - a
}

func between(a, b *sample) dashPoint {
	p := dashPoint{T: b.at.UnixMilli()}
	secs := b.at.Sub(a.at).Seconds()
	rq := delta(a.requests, b.requests)
	if secs > 0 {
		p.RPS = math.Round(float64(rq)/secs*100) / 100
	}
	if rq > 0 {
		p.ErrorRate = float64(delta(a.errors, b.errors)) / float64(rq)
	}
	var h stats.Snapshot
	for i := range h.Cumulative {
		h.Cumulative[i] = delta(a.latency.Cumulative[i], b.latency.Cumulative[i])
	}
	if h.Cumulative[len(h.Cumulative)-1] > 0 {
		q := func(v float64) *jsonFloat { f := jsonFloat(quantile(h, v)); return &f }
		p.P50, p.P90, p.P99 = q(0.5), q(0.9), q(0.99)
	}
	return p
}

// listenerConfig is what the dashboard needs of a configured listener.
type listenerConfig struct {
	name         string
	statPrefixes []string
}

// obj and its helpers walk config dump JSON without the protos: the dashboard only needs a
// few names, and should show what it can of a dump holding types this binary does not link.
type obj = map[string]any

func field(o obj, keys ...string) any {
	var v any = o
	for _, k := range keys {
		m, ok := v.(obj)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(o obj, keys ...string) string {
	s, _ := field(o, keys...).(string)
	return s
}

func objs(v any) []obj {
	list, _ := v.([]any)
	out := make([]obj, 0, len(list))
	for _, e := range list {
		if m, ok := e.(obj); ok {
			out = append(out, m)
		}
	}
	return out
}

// parseDumpRoutes finds each listener's HTTP connection managers and the route tables they
// use, inline or by RDS name.
func parseDumpRoutes(b []byte) ([]listenerConfig, []dashRouteConfig) {
	var dump obj
	if err := json.Unmarshal(b, &dump); err != nil {
		return nil, nil
	}
	var listeners []obj
	rds := map[string]obj{}
	for _, sec := range objs(dump["configs"]) {
		t := str(sec, "@type")
		switch {
		case strings.HasSuffix(t, ".ListenersConfigDump"):
			for _, l := range objs(sec["static_listeners"]) {
				if m, ok := l["listener"].(obj); ok {
					listeners = append(listeners, m)
				}
			}
			for _, l := range objs(sec["dynamic_listeners"]) {
				if m, ok := field(l, "active_state", "listener").(obj); ok {
					listeners = append(listeners, m)
				}
			}
		case strings.HasSuffix(t, ".RoutesConfigDump"):
			for _, r := range objs(sec["static_route_configs"]) {
				if m, ok := r["route_config"].(obj); ok {
					rds[str(m, "name")] = m
				}
			}
			for _, r := range objs(sec["dynamic_route_configs"]) {
				if m, ok := r["route_config"].(obj); ok {
					rds[str(m, "name")] = m
				}
			}
		}
	}
	var lcs []listenerConfig
	routes := []dashRouteConfig{}
	for _, l := range listeners {
		lc := listenerConfig{name: str(l, "name")}
		chains := objs(l["filter_chains"])
		if dc, ok := l["default_filter_chain"].(obj); ok {
			chains = append(chains, dc)
		}
		for _, fc := range chains {
			for _, f := range objs(fc["filters"]) {
				tc, _ := f["typed_config"].(obj)
				if !strings.HasSuffix(str(tc, "@type"), ".HttpConnectionManager") {
					continue
				}
				prefix := str(tc, "stat_prefix")
				lc.statPrefixes = append(lc.statPrefixes, prefix)
				rc, _ := tc["route_config"].(obj)
				if rc == nil {
					name := str(tc, "rds", "route_config_name")
					rc = rds[name]
					if rc == nil {
						rc = obj{"name": name}
					}
				}
				routes = append(routes, routeConfig(lc.name, prefix, rc))
			}
		}
		lcs = append(lcs, lc)
	}
	return lcs, routes
}

func routeConfig(listener, prefix string, rc obj) dashRouteConfig {
	out := dashRouteConfig{Name: str(rc, "name"), Listener: listener, StatPrefix: prefix, VirtualHosts: []dashVHost{}}
	for _, vh := range objs(rc["virtual_hosts"]) {
		v := dashVHost{Name: str(vh, "name"), Domains: []string{}, Routes: []dashRoute{}}
		domains, _ := vh["domains"].([]any)
		for _, d := range domains {
			if s, ok := d.(string); ok {
				v.Domains = append(v.Domains, s)
			}
		}
		for _, r := range objs(vh["routes"]) {
			v.Routes = append(v.Routes, dashRoute{Name: str(r, "name"), Match: describeMatch(r), Action: describeAction(r)})
		}
		out.VirtualHosts = append(out.VirtualHosts, v)
	}
	return out
}

// describeMatch is a route's match in a few words: "prefix /api", "path /healthz".
func describeMatch(r obj) string {
	m, _ := r["match"].(obj)
	var parts []string
	for _, k := range []string{"prefix", "path", "path_separated_prefix"} {
		if v, ok := m[k].(string); ok {
			parts = append(parts, strings.ReplaceAll(k, "_", " ")+" "+v)
		}
	}
	if re := str(m, "safe_regex", "regex"); re != "" {
		parts = append(parts, "regex "+re)
	}
	if _, ok := m["connect_matcher"]; ok {
		parts = append(parts, "CONNECT")
	}
	if hs := objs(m["headers"]); len(hs) > 0 {
		names := make([]string, 0, len(hs))
		for _, h := range hs {
			names = append(names, str(h, "name"))
		}
		parts = append(parts, "headers "+strings.Join(names, ", "))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " · ")
}

// describeAction is where a route sends a request: "→ backend", "redirect", "direct 200".
func describeAction(r obj) string {
	if ra, ok := r["route"].(obj); ok {
		if c := str(ra, "cluster"); c != "" {
			return "→ " + c
		}
		if h := str(ra, "cluster_header"); h != "" {
			return "→ cluster from header " + h
		}
		if wc := objs(field(ra, "weighted_clusters", "clusters")); len(wc) > 0 {
			parts := make([]string, 0, len(wc))
			for _, c := range wc {
				w := field(c, "weight")
				parts = append(parts, str(c, "name")+" ("+jsonNumber(w)+")")
			}
			sort.Strings(parts)
			return "→ " + strings.Join(parts, ", ")
		}
		return "→ route"
	}
	if rd, ok := r["redirect"].(obj); ok {
		target := str(rd, "host_redirect") + str(rd, "path_redirect") + str(rd, "prefix_rewrite")
		if str(rd, "https_redirect") != "" || rd["https_redirect"] == true {
			target = "https " + target
		}
		return strings.TrimSpace("redirect " + target)
	}
	if dr, ok := r["direct_response"].(obj); ok {
		return "direct " + jsonNumber(dr["status"])
	}
	return "—"
}

func jsonNumber(v any) string {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64)
	case string:
		return n
	}
	return "?"
}
