package tracing

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Tracer is one connection manager's compiled tracing config. It is immutable and shared by
// the manager's streams.
type Tracer struct {
	cfg *model.Tracing
	exp *exporter
	// Sampling thresholds out of samplingScale.
	client, random, overall uint64
	operation               string
}

const samplingScale = 1_000_000

// New compiles a tracing config. Tracers with the same collector and service share one
// exporter, which outlives configuration updates.
func New(m *model.Tracing) *Tracer {
	t := &Tracer{
		cfg:       m,
		exp:       exporterFor(m.Provider),
		client:    threshold(m.ClientSampling),
		random:    threshold(m.RandomSampling),
		overall:   threshold(m.OverallSampling),
		operation: m.Operation,
	}
	if t.operation == "" {
		t.operation = "ingress" // Envoy's operation name for a connection manager's span
	}
	return t
}

func threshold(percent float64) uint64 { return uint64(percent / 100 * samplingScale) }

func roll(threshold uint64) bool {
	if threshold >= samplingScale {
		return true
	}
	return rand.Uint64N(samplingScale) < threshold
}

// Span is the server span of one request and the client spans of its upstream attempts. It
// implements httpfilter.Span.
type Span struct {
	t        *Tracer
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte
	sampled  bool
	prop     propagation
	start    time.Time

	mu       sync.Mutex // attempts may start from a goroutine other than the stream's
	attempts []attempt
}

// attempt is a client span.
type attempt struct {
	spanID  [8]byte
	start   time.Time
	end     time.Time // zero until the next attempt starts or the stream ends
	cluster string
	host    string
}

// Start begins the server span of a request whose headers are complete and sanitised. It
// continues the request's trace context if it has one, decides sampling, and writes the
// span's context into the request headers, so the upstream request carries it.
func (t *Tracer) Start(s *httpfilter.Stream) *Span {
	sc, prop := extract(&s.Request)
	sp := &Span{t: t, prop: prop, start: s.Info.Start}
	if sp.start.IsZero() {
		sp.start = time.Now()
	}
	if sc.valid {
		sp.traceID, sp.parentID = sc.traceID, sc.spanID
	} else {
		binary.BigEndian.PutUint64(sp.traceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(sp.traceID[8:], rand.Uint64()|1)
	}
	sp.spanID = newSpanID()
	switch {
	case sc.decided:
		sp.sampled = sc.sampled
	case s.Request.Has("x-client-trace-id"):
		sp.sampled = roll(t.client) && roll(t.overall)
	default:
		sp.sampled = roll(t.random) && roll(t.overall)
	}
	inject(&s.Request, sp.traceID, sp.spanID, sp.parentID, sp.sampled, sp.prop)
	return sp
}

func newSpanID() [8]byte {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], rand.Uint64()|1)
	return id
}

// UpstreamAttempt implements httpfilter.Span: a client span per attempt, whose context goes
// upstream in h. Without spawn_upstream_span the server span's context (already in the
// request) is what the upstream sees.
func (sp *Span) UpstreamAttempt(s *httpfilter.Stream, h *header.Map) {
	if !sp.t.cfg.SpawnUpstreamSpan {
		return
	}
	now := time.Now()
	a := attempt{spanID: newSpanID(), start: now, cluster: strings.Clone(s.Info.UpstreamCluster), host: strings.Clone(s.Info.UpstreamHost)}
	sp.mu.Lock()
	if n := len(sp.attempts); n > 0 && sp.attempts[n-1].end.IsZero() {
		sp.attempts[n-1].end = now
	}
	sp.attempts = append(sp.attempts, a)
	sp.mu.Unlock()
	inject(h, sp.traceID, a.spanID, sp.spanID, sp.sampled, sp.prop)
}

// TraceID returns the span's trace id in hex (for logs and tests).
func (sp *Span) TraceID() string { return hexString(sp.traceID[:]) }

// Sampled reports whether the span will be exported.
func (sp *Span) Sampled() bool { return sp.sampled }

// Finish ends the request's spans at now and queues them for export if sampled. It reads the
// stream, which must still be valid (before the connection manager recycles it).
func (sp *Span) Finish(s *httpfilter.Stream, now time.Time) {
	if !sp.sampled {
		return
	}
	t := sp.t
	status := s.Response.Status
	isErr := status >= 500 || status == 0
	common := func(d *spanData) {
		d.attrs = append(d.attrs,
			attr{key: "component", str: "proxy"},
			attr{key: "node_id", str: t.cfg.NodeID},
			attr{key: "http.protocol", str: s.Downstream.Protocol},
		)
		for _, ct := range t.cfg.CustomTags {
			v := ct.Literal
			if ct.RequestHeader != "" {
				if hv, ok := s.Request.Get(ct.RequestHeader); ok {
					v = strings.Clone(hv)
				} else {
					v = ct.DefaultValue
				}
			}
			d.attrs = append(d.attrs, attr{key: ct.Tag, str: v})
		}
	}

	server := &spanData{
		traceID: sp.traceID, spanID: sp.spanID, parentID: sp.parentID,
		name: t.operation, kind: kindServer, start: sp.start, end: now, err: isErr,
	}
	common(server)
	server.attrs = append(server.attrs,
		attr{key: "guid:x-request-id", str: strings.Clone(s.Request.Value("x-request-id"))},
		attr{key: "http.url", str: t.url(s)},
		attr{key: "http.method", str: strings.Clone(s.Request.Method)},
		attr{key: "downstream_cluster", str: orDash(strings.Clone(s.Request.Value("x-envoy-downstream-service-cluster")))},
		attr{key: "user_agent", str: orDash(strings.Clone(s.Request.Value("user-agent")))},
		attr{key: "peer.address", str: s.Downstream.RemoteAddr.Addr().Unmap().String()},
		attr{key: "request_size", num: s.Info.BytesReceived, isNum: true},
		attr{key: "response_size", num: s.Info.BytesSent, isNum: true},
		attr{key: "http.status_code", num: int64(status), isNum: true},
		attr{key: "response_flags", str: s.Info.ResponseFlags.String()},
	)
	if s.Info.UpstreamCluster != "" {
		server.attrs = append(server.attrs,
			attr{key: "upstream_cluster", str: strings.Clone(s.Info.UpstreamCluster)},
			attr{key: "upstream_cluster.name", str: strings.Clone(s.Info.UpstreamCluster)},
		)
	}
	if isErr {
		server.attrs = append(server.attrs, attr{key: "error", str: "true"})
	}
	t.exp.enqueue(server)

	sp.mu.Lock()
	attempts := sp.attempts
	sp.attempts = nil
	sp.mu.Unlock()
	for i, a := range attempts {
		end, last := a.end, i == len(attempts)-1
		if end.IsZero() {
			end = now
		}
		d := &spanData{
			traceID: sp.traceID, spanID: a.spanID, parentID: sp.spanID,
			name: "router " + a.cluster + " egress", kind: kindClient, start: a.start, end: end,
		}
		common(d)
		d.attrs = append(d.attrs,
			attr{key: "upstream_cluster", str: a.cluster},
			attr{key: "upstream_cluster.name", str: a.cluster},
			attr{key: "upstream_address", str: a.host},
			attr{key: "http.method", str: strings.Clone(s.Request.Method)},
			attr{key: "http.url", str: t.url(s)},
		)
		if last {
			// Only the last attempt's outcome is known: earlier ones were retried.
			d.err = isErr
			d.attrs = append(d.attrs,
				attr{key: "http.status_code", num: int64(status), isNum: true},
				attr{key: "response_flags", str: s.Info.ResponseFlags.String()},
			)
			if s.Info.UpstreamFailure != "" {
				d.attrs = append(d.attrs, attr{key: "upstream_transport_failure_reason", str: strings.Clone(s.Info.UpstreamFailure)})
			}
		} else {
			d.err = true
			d.attrs = append(d.attrs, attr{key: "retry", str: "true"})
		}
		if d.err {
			d.attrs = append(d.attrs, attr{key: "error", str: "true"})
		}
		t.exp.enqueue(d)
	}
}

// url is the http.url tag: scheme://authority/path, cut at max_path_tag_length.
func (t *Tracer) url(s *httpfilter.Stream) string {
	h := &s.Request
	scheme := h.Scheme
	if scheme == "" {
		scheme = "http"
		if s.Downstream.Secure {
			scheme = "https"
		}
	}
	path := h.Value("x-envoy-original-path")
	if path == "" {
		path = h.Path
	}
	u := scheme + "://" + h.Authority + path
	if max := int(t.cfg.MaxPathTagLength); max > 0 && len(u) > max {
		u = u[:max]
	}
	return u
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var _ httpfilter.Span = (*Span)(nil)
