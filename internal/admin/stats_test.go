package admin

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// testStore holds a few stats of each kind under Envoy's names.
func testStore() *stats.Store {
	st := stats.NewStore()
	c := st.Scope("cluster.backend")
	c.Counter("upstream_rq_total").Add(7)
	c.Counter("upstream_rq_503").Add(2)
	c.Counter("upstream_rq_200").Add(5)
	c.Counter("upstream_rq_5xx").Add(2)
	c.Counter("upstream_cx_connect_fail")
	c.Gauge("membership_healthy").Set(2)
	h := st.Scope("http.ingress")
	h.Counter("downstream_rq_total").Add(7)
	h.Counter("downstream_rq_2xx").Add(5)
	h.Counter("downstream_rq_5xx").Add(2)
	rt := h.Histogram("downstream_rq_time")
	for _, v := range []float64{0.3, 3, 3, 7, 40} {
		rt.Record(v)
	}
	h.Histogram("downstream_cx_length_ms") // never recorded
	st.Scope("listener.127.0.0.1_8080").Counter("downstream_cx_total").Add(3)
	st.Scope("server").Gauge("live").Set(1)
	return st
}

func TestStatsText(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: testStore()})
	r := do(t, s, "GET", "/stats")
	if r.code != 200 || r.header.Get("Content-Type") != contentText {
		t.Fatalf("status %d, type %q", r.code, r.header.Get("Content-Type"))
	}
	want := `cluster.backend.membership_healthy: 2
cluster.backend.upstream_cx_connect_fail: 0
cluster.backend.upstream_rq_200: 5
cluster.backend.upstream_rq_503: 2
cluster.backend.upstream_rq_5xx: 2
cluster.backend.upstream_rq_total: 7
http.ingress.downstream_rq_2xx: 5
http.ingress.downstream_rq_5xx: 2
http.ingress.downstream_rq_total: 7
listener.127.0.0.1_8080.downstream_cx_total: 3
server.live: 1
http.ingress.downstream_cx_length_ms: No recorded values
http.ingress.downstream_rq_time: P0(nan,0) P25(nan,1.5) P50(nan,4) P75(nan,8.75) P90(nan,37.5) P95(nan,43.75) P99(nan,48.75) P99.5(nan,49.375) P99.9(nan,49.875) P100(nan,50)
`
	if r.body != want {
		t.Errorf("body:\n%s\nwant:\n%s", r.body, want)
	}
}

func TestStatsQuery(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: testStore()})
	tests := []struct {
		name, path string
		wantCode   int
		want       []string // lines, in order
	}{
		{name: "filter", path: "/stats?filter=upstream_rq_[0-9]", wantCode: 200,
			want: []string{"cluster.backend.upstream_rq_200: 5", "cluster.backend.upstream_rq_503: 2", "cluster.backend.upstream_rq_5xx: 2"}},
		{name: "filter anchored", path: "/stats?filter=%5Eserver%5C.", wantCode: 200, want: []string{"server.live: 1"}},
		{name: "usedonly", path: "/stats?usedonly&filter=cx_", wantCode: 200,
			want: []string{"listener.127.0.0.1_8080.downstream_cx_total: 3"}},
		{name: "type gauges", path: "/stats?type=Gauges", wantCode: 200,
			want: []string{"cluster.backend.membership_healthy: 2", "server.live: 1"}},
		{name: "type histograms used", path: "/stats?type=Histograms&usedonly", wantCode: 200,
			want: []string{"http.ingress.downstream_rq_time: P0(nan,0) P25(nan,1.5) P50(nan,4) P75(nan,8.75) P90(nan,37.5) P95(nan,43.75) P99(nan,48.75) P99.5(nan,49.375) P99.9(nan,49.875) P100(nan,50)"}},
		{name: "bad regex", path: "/stats?filter=%28", wantCode: 400},
		{name: "bad type", path: "/stats?type=Timers", wantCode: 400},
		{name: "bad format", path: "/stats?format=xml", wantCode: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, s, "GET", tc.path)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantCode != 200 {
				return
			}
			got := strings.Split(strings.TrimSuffix(r.body, "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", r.body, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestStatsJSON(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: testStore()})
	r := do(t, s, "GET", "/stats?format=json&filter=http%5C.")
	if r.code != 200 || r.header.Get("Content-Type") != contentJSON {
		t.Fatalf("status %d, type %q", r.code, r.header.Get("Content-Type"))
	}
	jsonEqual(t, r.body, `{"stats":[
		{"name":"http.ingress.downstream_rq_2xx","value":5},
		{"name":"http.ingress.downstream_rq_5xx","value":2},
		{"name":"http.ingress.downstream_rq_total","value":7},
		{"histograms":{
			"supported_quantiles":[0,25,50,75,90,95,99,99.5,99.9,100],
			"computed_quantiles":[
				{"name":"http.ingress.downstream_cx_length_ms","values":[
					{"interval":null,"cumulative":null},{"interval":null,"cumulative":null},
					{"interval":null,"cumulative":null},{"interval":null,"cumulative":null},
					{"interval":null,"cumulative":null},{"interval":null,"cumulative":null},
					{"interval":null,"cumulative":null},{"interval":null,"cumulative":null},
					{"interval":null,"cumulative":null},{"interval":null,"cumulative":null}]},
				{"name":"http.ingress.downstream_rq_time","values":[
					{"interval":null,"cumulative":0},{"interval":null,"cumulative":1.5},
					{"interval":null,"cumulative":4},{"interval":null,"cumulative":8.75},
					{"interval":null,"cumulative":37.5},{"interval":null,"cumulative":43.75},
					{"interval":null,"cumulative":48.75},{"interval":null,"cumulative":49.375},
					{"interval":null,"cumulative":49.875},{"interval":null,"cumulative":50}]}
			]}}
	]}`)

	// Without histograms there is no histograms entry.
	r = do(t, s, "GET", "/stats?format=json&filter=server")
	jsonEqual(t, r.body, `{"stats":[{"name":"server.live","value":1}]}`)
}

// parseProm parses a Prometheus text exposition the way a Prometheus server does.
func parseProm(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// series finds the metric of fam with exactly the given labels.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		t.Fatalf("no family %s", name)
	}
	for _, m := range fam.GetMetric() {
		got := labels(m)
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("no %s%v among %v", name, want, fam.GetMetric())
	return nil
}

func TestPrometheus(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: testStore()})
	r := do(t, s, "GET", "/stats/prometheus")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, type %q", r.code, r.header.Get("Content-Type"))
	}
	fams := parseProm(t, r.body)

	counters := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"envoy_cluster_upstream_rq_total", map[string]string{"envoy_cluster_name": "backend"}, 7},
		{"envoy_cluster_upstream_rq", map[string]string{"envoy_cluster_name": "backend", "envoy_response_code": "503"}, 2},
		{"envoy_cluster_upstream_rq", map[string]string{"envoy_cluster_name": "backend", "envoy_response_code": "200"}, 5},
		{"envoy_cluster_upstream_rq_xx", map[string]string{"envoy_cluster_name": "backend", "envoy_response_code_class": "5"}, 2},
		{"envoy_http_downstream_rq_xx", map[string]string{"envoy_http_conn_manager_prefix": "ingress", "envoy_response_code_class": "2"}, 5},
		{"envoy_http_downstream_rq_total", map[string]string{"envoy_http_conn_manager_prefix": "ingress"}, 7},
		{"envoy_listener_downstream_cx_total", map[string]string{"envoy_listener_address": "127.0.0.1_8080"}, 3},
	}
	for _, c := range counters {
		fam := fams[c.name]
		if fam.GetType() != dto.MetricType_COUNTER {
			t.Errorf("%s: type %v, want counter", c.name, fam.GetType())
		}
		if got := series(t, fams, c.name, c.labels).GetCounter().GetValue(); got != c.value {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.value)
		}
	}
	if fam := fams["envoy_server_live"]; fam.GetType() != dto.MetricType_GAUGE || series(t, fams, "envoy_server_live", nil).GetGauge().GetValue() != 1 {
		t.Errorf("envoy_server_live: %v", fam)
	}

	fam := fams["envoy_http_downstream_rq_time"]
	if fam.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("envoy_http_downstream_rq_time: type %v", fam.GetType())
	}
	h := series(t, fams, "envoy_http_downstream_rq_time", map[string]string{"envoy_http_conn_manager_prefix": "ingress"}).GetHistogram()
	if h.GetSampleCount() != 5 || math.Abs(h.GetSampleSum()-53.3) > 1e-9 {
		t.Errorf("count %d sum %v, want 5 and 53.3", h.GetSampleCount(), h.GetSampleSum())
	}
	wantBuckets := map[float64]uint64{0.5: 1, 1: 1, 5: 3, 10: 4, 25: 4, 50: 5, 3600000: 5}
	got := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	if len(h.GetBucket()) != len(stats.Bounds) && len(h.GetBucket()) != len(stats.Bounds)+1 {
		t.Errorf("%d buckets, want %d", len(h.GetBucket()), len(stats.Bounds))
	}
	for le, n := range wantBuckets {
		if got[le] != n {
			t.Errorf("bucket le=%v: %d, want %d", le, got[le], n)
		}
	}

	// Envoy's exact lines, for the tools that grep rather than parse.
	for _, line := range []string{
		"# TYPE envoy_cluster_upstream_rq counter\n",
		`envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="backend"} 2` + "\n",
		`envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress"} 5` + "\n",
		"envoy_server_live{} 1\n",
		`envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="ingress",le="0.5"} 1` + "\n",
		`envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="ingress",le="3600000"} 5` + "\n",
		`envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="ingress",le="+Inf"} 5` + "\n",
		`envoy_http_downstream_rq_time_sum{envoy_http_conn_manager_prefix="ingress"} 53.3` + "\n",
		`envoy_http_downstream_rq_time_count{envoy_http_conn_manager_prefix="ingress"} 5` + "\n",
	} {
		if !strings.Contains(r.body, line) {
			t.Errorf("exposition lacks %q", line)
		}
	}
	// Counters, then gauges, then histograms.
	ci, gi, hi := strings.Index(r.body, " counter\n"), strings.Index(r.body, " gauge\n"), strings.Index(r.body, " histogram\n")
	if !(ci < gi && gi < hi) {
		t.Errorf("families out of order: counter at %d, gauge at %d, histogram at %d", ci, gi, hi)
	}
}

func TestPrometheusQuery(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: testStore()})
	fams := parseProm(t, do(t, s, "GET", "/stats/prometheus?filter=%5Ecluster%5C.&usedonly").body)
	for name := range fams {
		if !strings.HasPrefix(name, "envoy_cluster_") {
			t.Errorf("filter let %s through", name)
		}
	}
	if _, ok := fams["envoy_cluster_upstream_cx_connect_fail"]; ok {
		t.Error("usedonly let a zero counter through")
	}
	if _, ok := fams["envoy_cluster_upstream_rq_total"]; !ok {
		t.Error("envoy_cluster_upstream_rq_total missing")
	}
	// /stats?format=prometheus is the same exposition.
	a := do(t, s, "GET", "/stats/prometheus").body
	b := do(t, s, "GET", "/stats?format=prometheus").body
	if a != b {
		t.Errorf("/stats?format=prometheus differs from /stats/prometheus")
	}
	if r := do(t, s, "GET", "/stats/prometheus?filter=%5B"); r.code != 400 {
		t.Errorf("bad regex: status %d", r.code)
	}
}

func TestPrometheusEmptyStore(t *testing.T) {
	s := start(t, Options{Source: newTestSource(), Stats: stats.NewStore()})
	r := do(t, s, "GET", "/stats/prometheus")
	if r.code != 200 || r.body != "" {
		t.Errorf("status %d, body %q", r.code, r.body)
	}
}

func TestResetCounters(t *testing.T) {
	st := testStore()
	s := start(t, Options{Source: newTestSource(), Stats: st})
	if r := do(t, s, "GET", "/reset_counters"); r.code != 405 {
		t.Errorf("GET: status %d, want 405", r.code)
	}
	if r := do(t, s, "POST", "/reset_counters"); r.code != 200 || r.body != "OK\n" {
		t.Fatalf("POST: status %d body %q", r.code, r.body)
	}
	r := do(t, s, "GET", "/stats?format=json&filter=upstream_rq_total%7Cmembership_healthy")
	jsonEqual(t, r.body, `{"stats":[{"name":"cluster.backend.membership_healthy","value":2},{"name":"cluster.backend.upstream_rq_total","value":0}]}`)
}

// refreshingSource counts RefreshStats calls.
type refreshingSource struct {
	*testSource
	g *stats.Gauge
}

func (r *refreshingSource) RefreshStats() { r.g.Add(1) }

func TestStatsRefresher(t *testing.T) {
	st := stats.NewStore()
	src := &refreshingSource{testSource: newTestSource(), g: st.Scope("server").Gauge("uptime")}
	s := start(t, Options{Source: src, Stats: st})
	do(t, s, "GET", "/stats")
	r := do(t, s, "GET", "/stats")
	if r.body != "server.uptime: 2\n" {
		t.Errorf("body %q: the source was not asked to refresh before each listing", r.body)
	}
}

func TestQuantile(t *testing.T) {
	var h stats.Histogram
	if got := quantile(h.Snapshot(), 0.5); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}
	h.Record(1e7) // beyond the last bound: the overflow bucket
	if got := quantile(h.Snapshot(), 0.99); got != stats.Bounds[len(stats.Bounds)-1] {
		t.Errorf("overflow: %v", got)
	}
	var g stats.Histogram
	g.Record(20) // the 10-25 bucket
	s := g.Snapshot()
	if q0, q1 := quantile(s, 0), quantile(s, 1); q0 != 10 || q1 != 25 {
		t.Errorf("P0 %v P100 %v, want the bucket's bounds 10 and 25", q0, q1)
	}
}

func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1: "1", 1.025: "1.025", 3600000: "3600000", 99.5: "99.5", 1e20: "1e+20"} {
		if got := formatFloat(v); got != want {
			t.Errorf("formatFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if got := formatFloat(math.NaN()); got != "nan" {
		t.Errorf("NaN: %q", got)
	}
	b, _ := json.Marshal([]jsonFloat{jsonFloat(math.NaN()), 2.5})
	if string(b) != "[null,2.5]" {
		t.Errorf("jsonFloat: %s", b)
	}
}
