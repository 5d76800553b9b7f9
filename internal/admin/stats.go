package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// quantiles are the ones Envoy's histograms report, in its order.
var quantiles = [...]float64{0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1}

// statsQuery is what /stats and /stats/prometheus read from the query string.
type statsQuery struct {
	filter   *regexp.Regexp
	usedOnly bool
	kind     string // Envoy's type parameter: "", "All", "Counters", "Gauges" or "Histograms"
}

// parseStatsQuery answers 400 and reports false when a parameter is invalid.
func parseStatsQuery(w http.ResponseWriter, r *http.Request) (statsQuery, bool) {
	q := r.URL.Query()
	var sq statsQuery
	if f := q.Get("filter"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			textError(w, http.StatusBadRequest, "Invalid re2 regex: "+err.Error())
			return sq, false
		}
		sq.filter = re
	}
	_, sq.usedOnly = q["usedonly"]
	switch t := q.Get("type"); t {
	case "", "All", "Counters", "Gauges", "Histograms":
		sq.kind = t
	default:
		textError(w, http.StatusBadRequest, fmt.Sprintf("invalid type %q: want All, Counters, Gauges or Histograms", t))
		return sq, false
	}
	return sq, true
}

// keep reports whether st passes the query. Nuncio does not track whether a stat was ever
// written, so "used" means what an operator means by it: a counter or gauge that is not zero,
// a histogram with at least one value.
func (q statsQuery) keep(st *stats.Stat) bool {
	switch q.kind {
	case "Counters":
		if st.Kind != stats.KindCounter {
			return false
		}
	case "Gauges":
		if st.Kind != stats.KindGauge {
			return false
		}
	case "Histograms":
		if st.Kind != stats.KindHistogram {
			return false
		}
	}
	if q.usedOnly && !used(st) {
		return false
	}
	return q.filter == nil || q.filter.MatchString(st.Name)
}

func used(st *stats.Stat) bool {
	if st.Kind == stats.KindHistogram {
		return st.Histogram.Count > 0
	}
	return st.Value != 0
}

// listStats refreshes the stats a Source computes on demand, then lists the store.
func (s *Server) listStats() []stats.Stat {
	if r, ok := s.opts.Source.(StatsRefresher); ok {
		r.RefreshStats()
	}
	return s.opts.Stats.All()
}

// serveStats writes the stats in Envoy's text form ("name: value", histograms as quantile
// summaries), as Envoy's JSON, or, with format=prometheus, as /stats/prometheus does.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	q, ok := parseStatsQuery(w, r)
	if !ok {
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", "text", "json":
	case "prometheus":
		s.writePrometheus(w, q)
		return
	default:
		textError(w, http.StatusBadRequest, fmt.Sprintf("invalid format %q: want text, json or prometheus", format))
		return
	}
	all := s.listStats()
	var scalars, hists []*stats.Stat
	for i := range all {
		st := &all[i]
		if !q.keep(st) {
			continue
		}
		if st.Kind == stats.KindHistogram {
			hists = append(hists, st)
		} else {
			scalars = append(scalars, st)
		}
	}
	if format == "json" {
		writeJSON(w, statsJSON(scalars, hists))
		return
	}
	var b strings.Builder
	for _, st := range scalars {
		b.WriteString(st.Name)
		b.WriteString(": ")
		b.WriteString(strconv.FormatInt(st.Value, 10))
		b.WriteByte('\n')
	}
	for _, st := range hists {
		b.WriteString(st.Name)
		b.WriteString(": ")
		b.WriteString(quantileSummary(st.Histogram))
		b.WriteByte('\n')
	}
	text(w, http.StatusOK, b.String())
}

// quantileSummary is Envoy's "P0(interval,cumulative) P25(…) … P100(…)". Nuncio keeps no
// per-flush intervals (it has no stats sinks to flush to), so the interval values are "nan",
// which is what Envoy prints for an interval without samples.
func quantileSummary(h stats.Snapshot) string {
	if h.Count == 0 {
		return "No recorded values"
	}
	var b strings.Builder
	for i, q := range quantiles {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('P')
		b.WriteString(formatFloat(q * 100))
		b.WriteString("(nan,")
		b.WriteString(formatFloat(quantile(h, q)))
		b.WriteByte(')')
	}
	return b.String()
}

// quantile estimates the q-quantile of h by linear interpolation within the bucket that holds
// it; q=0 is the lower bound of the first bucket with a value, and a quantile in the overflow
// bucket is reported as the largest bound.
func quantile(h stats.Snapshot, q float64) float64 {
	total := h.Cumulative[len(h.Cumulative)-1]
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	prev := uint64(0)
	for i, c := range h.Cumulative {
		if c > prev && float64(c) >= rank {
			if i == len(stats.Bounds) {
				return stats.Bounds[len(stats.Bounds)-1]
			}
			lower := 0.0
			if i > 0 {
				lower = stats.Bounds[i-1]
			}
			upper := stats.Bounds[i]
			f := (rank - float64(prev)) / float64(c-prev)
			if f < 0 {
				f = 0
			}
			// Rounded to a micro-unit so that interpolation noise (49.37499999999999) does
			// not reach the output; the estimate is far coarser than that anyway.
			return math.Round((lower+(upper-lower)*f)*1e6) / 1e6
		}
		prev = c
	}
	return stats.Bounds[len(stats.Bounds)-1]
}

// formatFloat writes a float as Envoy's fmt "{}" does: the shortest form that reads back the
// same, without an exponent for the magnitudes stats have, and "nan" for NaN.
func formatFloat(v float64) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	case v != 0 && (math.Abs(v) >= 1e16 || math.Abs(v) < 1e-4):
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// jsonFloat is a float that marshals NaN as null, as Envoy's JSON writer does.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(float64(f), 'g', -1, 64)), nil
}

type statJSON struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
}

type histogramsJSON struct {
	Histograms struct {
		SupportedQuantiles []jsonFloat         `json:"supported_quantiles"`
		ComputedQuantiles  []computedQuantiles `json:"computed_quantiles"`
	} `json:"histograms"`
}

type computedQuantiles struct {
	Name   string          `json:"name"`
	Values []quantileValue `json:"values"`
}

type quantileValue struct {
	Interval   jsonFloat `json:"interval"`
	Cumulative jsonFloat `json:"cumulative"`
}

// statsJSON is Envoy's /stats?format=json: {"stats":[{"name":…,"value":…}, …,
// {"histograms":{"supported_quantiles":[…],"computed_quantiles":[…]}}]}, the histograms entry
// present only when there are histograms.
func statsJSON(scalars, hists []*stats.Stat) map[string][]any {
	list := make([]any, 0, len(scalars)+1)
	for _, st := range scalars {
		list = append(list, statJSON{Name: st.Name, Value: st.Value})
	}
	if len(hists) > 0 {
		var h histogramsJSON
		for _, q := range quantiles {
			h.Histograms.SupportedQuantiles = append(h.Histograms.SupportedQuantiles, jsonFloat(q*100))
		}
		h.Histograms.ComputedQuantiles = []computedQuantiles{}
		for _, st := range hists {
			cq := computedQuantiles{Name: st.Name}
			for _, q := range quantiles {
				cq.Values = append(cq.Values, quantileValue{Interval: jsonFloat(math.NaN()), Cumulative: jsonFloat(quantile(st.Histogram, q))})
			}
			h.Histograms.ComputedQuantiles = append(h.Histograms.ComputedQuantiles, cq)
		}
		list = append(list, h)
	}
	return map[string][]any{"stats": list}
}

func (s *Server) serveResetCounters(w http.ResponseWriter, r *http.Request) {
	s.opts.Stats.ResetCounters()
	s.log.Info("counters reset", "remote", r.RemoteAddr)
	text(w, http.StatusOK, "OK\n")
}

func (s *Server) servePrometheus(w http.ResponseWriter, r *http.Request) {
	q, ok := parseStatsQuery(w, r)
	if !ok {
		return
	}
	s.writePrometheus(w, q)
}

// promSeries is one stat under its Prometheus name and labels.
type promSeries struct {
	stat   *stats.Stat
	labels string // `a="1",b="2"`, without braces
}

// writePrometheus writes Envoy's Prometheus text exposition: names prefixed envoy_ and tag
// extracted, counters then gauges then histograms, each family sorted by name under its
// # TYPE line and its series by stat name, a blank line after each family.
func (s *Server) writePrometheus(w http.ResponseWriter, q statsQuery) {
	all := s.listStats()
	tagged := s.tags.lookup(all)
	families := [3]map[string][]promSeries{{}, {}, {}}
	for i := range all {
		st := &all[i]
		if !q.keep(st) {
			continue
		}
		t := tagged[i]
		families[st.Kind][t.name] = append(families[st.Kind][t.name], promSeries{stat: st, labels: t.labels})
	}
	var b bytes.Buffer
	for kind, fam := range families {
		typ := [...]string{"counter", "gauge", "histogram"}[kind]
		names := make([]string, 0, len(fam))
		for n := range fam {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			fmt.Fprintf(&b, "# TYPE %s %s\n", name, typ)
			for _, ps := range fam[name] { // already in stat-name order: All sorts
				if stats.Kind(kind) == stats.KindHistogram {
					writePromHistogram(&b, name, ps)
					continue
				}
				fmt.Fprintf(&b, "%s{%s} %d\n", name, ps.labels, ps.stat.Value)
			}
			b.WriteByte('\n')
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=UTF-8")
	_, _ = w.Write(b.Bytes())
}

func writePromHistogram(b *bytes.Buffer, name string, ps promSeries) {
	h := ps.stat.Histogram
	sep := ""
	if ps.labels != "" {
		sep = ","
	}
	for i, bound := range stats.Bounds {
		fmt.Fprintf(b, "%s_bucket{%s%sle=\"%s\"} %d\n", name, ps.labels, sep, strconv.FormatFloat(bound, 'f', -1, 64), h.Cumulative[i])
	}
	fmt.Fprintf(b, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, ps.labels, sep, h.Cumulative[len(h.Cumulative)-1])
	fmt.Fprintf(b, "%s_sum{%s} %s\n", name, ps.labels, strconv.FormatFloat(h.Sum, 'f', -1, 64))
	fmt.Fprintf(b, "%s_count{%s} %d\n", name, ps.labels, h.Cumulative[len(h.Cumulative)-1])
}

// promName is the Prometheus form of a stat: metric name and formatted labels.
type promName struct {
	name, labels string
}

// tagCache remembers each stat's Prometheus form, since tag extraction runs a few dozen
// regular expressions per name. Each lookup keeps only the names it was asked about, so the
// cache follows the store as stats come and go.
type tagCache struct {
	mu sync.Mutex
	m  map[string]promName
}

func (c *tagCache) lookup(all []stats.Stat) []promName {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]promName, len(all))
	out := make([]promName, len(all))
	for i := range all {
		n := all[i].Name
		p, ok := c.m[n]
		if !ok {
			p = prometheusName(n)
		}
		next[n] = p
		out[i] = p
	}
	c.m = next
	return out
}

// prometheusName extracts name's tags and formats both for Prometheus.
func prometheusName(name string) promName {
	extracted, tags := extractTags(name, defaultExtractors)
	var b strings.Builder
	for i, t := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sanitizeProm(t.name))
		b.WriteString(`="`)
		b.WriteString(escapeLabel(t.value))
		b.WriteByte('"')
	}
	return promName{name: sanitizeProm("envoy_" + extracted), labels: b.String()}
}

// sanitizeProm replaces what Prometheus names may not contain with "_", as Envoy does.
func sanitizeProm(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// escapeLabel escapes a label value for the text exposition format.
func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

var _ json.Marshaler = jsonFloat(0)
