package admin

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

type reportingSource struct {
	*testSource
	status ConfigStatus
}

func (r *reportingSource) ConfigStatus() ConfigStatus { return r.status }

// dashDump is a config dump as the server writes it: an inline route table on one listener,
// an RDS one on another.
const dashDump = `{"configs":[
 {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","static_listeners":[
  {"listener":{"name":"http","filter_chains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typed_config":{
    "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix":"ingress",
    "route_config":{"name":"local","virtual_hosts":[{"name":"api","domains":["api.example.com","*.api.example.com"],"routes":[
      {"name":"users","match":{"prefix":"/users"},"route":{"cluster":"backend"}},
      {"match":{"path":"/old"},"redirect":{"path_redirect":"/new"}},
      {"match":{"safe_regex":{"regex":"^/v[0-9]+/"},"headers":[{"name":"x-canary"}]},"route":{"weighted_clusters":{"clusters":[{"name":"b","weight":10},{"name":"a","weight":90}]}}},
      {"match":{"prefix":"/"},"direct_response":{"status":404}}]}]}}}]}]}}],
  "dynamic_listeners":[{"name":"xds","active_state":{"listener":{"name":"xds","filter_chains":[{"filters":[{"name":"hcm","typed_config":{
    "@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix":"xds_http","rds":{"route_config_name":"dynamic"}}}]}]}}}]},
 {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[
  {"route_config":{"name":"dynamic","virtual_hosts":[{"name":"all","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"xds"}}]}]}}]}
]}`

func TestDashboardData(t *testing.T) {
	st := stats.NewStore()
	in := st.Scope("http.ingress")
	rq, e5 := in.Counter("downstream_rq_total"), in.Counter("downstream_rq_5xx")
	rt := in.Histogram("downstream_rq_time")
	xrq := st.Scope("http.xds_http").Counter("downstream_rq_total")
	st.Scope("cluster.backend").Counter("upstream_rq_total").Add(4)

	src := &reportingSource{testSource: newTestSource()}
	src.dump = []byte(dashDump)
	src.listeners = []ListenerStatus{{Name: "http", Address: "0.0.0.0:8080", ActiveConnections: 2}, {Name: "xds", Address: "0.0.0.0:9090", ActiveConnections: 1}}
	rejectedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src.status = ConfigStatus{Version: "7", AppliedAt: rejectedAt.Add(-time.Hour), LastRejection: &Rejection{At: rejectedAt, Reason: "cluster \"x\": bad"}}
	s, err := New(Options{Source: src, Stats: st})
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Unix(1000, 0)
	first := s.dashboardData(t0)
	if len(first.Series) != 0 {
		t.Errorf("one sample gives %d points, want none", len(first.Series))
	}
	// Ten requests in the next two seconds, one a 5xx, latencies 2..20 ms.
	rq.Add(8)
	xrq.Add(2)
	e5.Inc()
	for i := 1; i <= 10; i++ {
		rt.Record(float64(2 * i))
	}
	d := s.dashboardData(t0.Add(2 * time.Second))
	// Too soon after the last sample: no new point.
	if again := s.dashboardData(t0.Add(2*time.Second + 100*time.Millisecond)); len(again.Series) != 1 {
		t.Errorf("a sample %v after the last added a point: %d points", 100*time.Millisecond, len(again.Series))
	}

	if d.Totals.Requests != 10 || d.Totals.Errors != 1 || d.Totals.ActiveConnections != 3 {
		t.Errorf("totals %+v", d.Totals)
	}
	if len(d.Series) != 1 {
		t.Fatalf("%d points, want 1", len(d.Series))
	}
	p := d.Series[0]
	if p.RPS != 5 || p.ErrorRate != 0.1 || p.P50 == nil || *p.P50 != 10 || *p.P99 <= *p.P90 {
		t.Errorf("point %+v (p50 %v p90 %v p99 %v)", p, deref(p.P50), deref(p.P90), deref(p.P99))
	}
	if d.Config.Version != "7" || d.Config.Rejection == nil || d.Config.Rejection.Reason != "cluster \"x\": bad" || d.Config.Rejection.At != "2026-01-02T03:04:05Z" {
		t.Errorf("config %+v", d.Config)
	}
	if len(d.Listeners) != 2 || d.Listeners[0].Requests != 8 || d.Listeners[1].Requests != 2 || d.Listeners[0].StatPrefixes[0] != "ingress" {
		t.Errorf("listeners %+v", d.Listeners)
	}
	if len(d.Clusters) != 2 || d.Clusters[0].Name != "backend" || d.Clusters[0].Requests != 4 || d.Clusters[0].Healthy != 1 ||
		d.Clusters[0].Hosts[1].Healthy || d.Clusters[0].Hosts[1].Health != "/failed_active_hc/failed_outlier_check" {
		t.Errorf("clusters %+v", d.Clusters)
	}

	wantRoutes := `[
	 {"name":"local","listener":"http","stat_prefix":"ingress","virtual_hosts":[{"name":"api","domains":["api.example.com","*.api.example.com"],"routes":[
	   {"name":"users","match":"prefix /users","action":"→ backend"},
	   {"match":"path /old","action":"redirect /new"},
	   {"match":"regex ^/v[0-9]+/ · headers x-canary","action":"→ a (90), b (10)"},
	   {"match":"prefix /","action":"direct 404"}]}]},
	 {"name":"dynamic","listener":"xds","stat_prefix":"xds_http","virtual_hosts":[{"name":"all","domains":["*"],"routes":[
	   {"match":"prefix /","action":"→ xds"}]}]}]`
	got, _ := json.Marshal(d.Routes)
	jsonEqual(t, string(got), wantRoutes)
}

func deref(f *jsonFloat) any {
	if f == nil {
		return nil
	}
	return float64(*f)
}

func TestDashboardHistoryIsBounded(t *testing.T) {
	var d dashboard
	t0 := time.Unix(0, 0)
	for i := 0; i < dashboardHistory+50; i++ {
		d.record(sample{at: t0.Add(time.Duration(i) * time.Second), requests: uint64(i)})
	}
	pts := d.record(sample{at: t0.Add(time.Hour)})
	if len(d.samples) != dashboardHistory || len(pts) != dashboardHistory-1 {
		t.Errorf("%d samples, %d points", len(d.samples), len(pts))
	}
	// The counter went down (reset_counters): the point counts from zero, not a huge delta.
	if last := pts[len(pts)-1]; last.RPS != 0 {
		t.Errorf("after a reset: %v req/s", last.RPS)
	}
}

func TestDashboardPage(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: stats.NewStore()})
	tests := []struct {
		path, wantType string
		wantCode       int
		wantContain    string
	}{
		{path: "/dashboard", wantType: contentHTML, wantCode: 200, wantContain: `<script src="/dashboard/app.js"`},
		{path: "/dashboard/app.js", wantType: "text/javascript; charset=UTF-8", wantCode: 200, wantContain: "/dashboard/data"},
		{path: "/dashboard/style.css", wantType: "text/css; charset=UTF-8", wantCode: 200, wantContain: ".kpis"},
		{path: "/dashboard/data", wantType: contentJSON, wantCode: 200, wantContain: `"downstream_rq_total": 0`},
		{path: "/dashboard/nothing.js", wantCode: 404},
		{path: "/dashboard/", wantCode: 404},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, s, "GET", tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d", r.code, tc.wantCode)
			}
			if tc.wantType != "" && r.header.Get("Content-Type") != tc.wantType {
				t.Errorf("type %q, want %q", r.header.Get("Content-Type"), tc.wantType)
			}
			if !strings.Contains(r.body, tc.wantContain) {
				t.Errorf("body lacks %q", tc.wantContain)
			}
		})
	}
	if r := do(t, s, "POST", "/dashboard/data"); r.code != 405 {
		t.Errorf("POST data: status %d", r.code)
	}
	if csp := do(t, s, "GET", "/dashboard").header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

// TestDashboardIsSelfContained keeps the page from loading anything from elsewhere: the admin
// listener is often reachable only from the host, without internet access.
func TestDashboardIsSelfContained(t *testing.T) {
	remote := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(dashboardFiles, "dashboard", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(dashboardFiles, path)
		for _, m := range remote.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace, a name and not a fetch
				t.Errorf("%s refers to %s", path, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
