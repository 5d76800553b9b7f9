package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

const (
	batchSize     = 512
	flushInterval = time.Second
)

type spanKind uint8

const (
	kindServer spanKind = iota
	kindClient
)

// spanData is a finished span, copied out of the stream, waiting for export.
type spanData struct {
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte
	name     string
	kind     spanKind
	start    time.Time
	end      time.Time
	err      bool
	attrs    []attr
}

type attr struct {
	key   string
	str   string
	num   int64
	isNum bool
}

// Stats are a collector's counters.
type Stats struct {
	Exported stats.Counter // spans the collector accepted
	Dropped  stats.Counter // spans dropped because the queue was full or no collector is known
	Failed   stats.Counter // spans in batches whose export failed
}

// exporter batches spans to one OTLP/gRPC collector.
type exporter struct {
	key      string
	cfg      model.OpenTelemetry
	queue    chan *spanData
	flush    chan chan struct{}
	resource *resourcepb.Resource
	Stats    Stats

	conn   *grpc.ClientConn
	client coltracepb.TraceServiceClient
}

var exporters = struct {
	sync.Mutex
	m map[string]*exporter
}{m: map[string]*exporter{}}

func exporterFor(c model.OpenTelemetry) *exporter {
	key := fmt.Sprintf("%s|%s|%s|%s|%d", c.CollectorAddress, c.Authority, c.ServiceName, c.Timeout, c.MaxCacheSize)
	exporters.Lock()
	defer exporters.Unlock()
	if e, ok := exporters.m[key]; ok {
		return e
	}
	size := int(c.MaxCacheSize)
	if size <= 0 {
		size = 1024
	}
	e := &exporter{
		key:   key,
		cfg:   c,
		queue: make(chan *spanData, size),
		flush: make(chan chan struct{}),
		resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			strAttr("service.name", c.ServiceName),
			strAttr("telemetry.sdk.language", "go"),
			strAttr("telemetry.sdk.name", "nuncio"),
		}},
	}
	if c.CollectorAddress != "" {
		var opts []grpc.DialOption
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if c.Authority != "" {
			opts = append(opts, grpc.WithAuthority(c.Authority))
		}
		// NewClient does not connect; the first export does, and reconnects after failures.
		conn, err := grpc.NewClient("passthrough:///"+c.CollectorAddress, opts...)
		if err == nil {
			e.conn, e.client = conn, coltracepb.NewTraceServiceClient(conn)
		}
	}
	exporters.m[key] = e
	go e.run()
	return e
}

// enqueue hands a span to the exporter without waiting.
func (e *exporter) enqueue(d *spanData) {
	if e.client == nil {
		e.Stats.Dropped.Inc()
		return
	}
	select {
	case e.queue <- d:
	default:
		e.Stats.Dropped.Inc()
	}
}

func (e *exporter) run() {
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	batch := make([]*spanData, 0, batchSize)
	send := func() {
		if len(batch) > 0 {
			e.export(batch)
			clear(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case d := <-e.queue:
			batch = append(batch, d)
			if len(batch) >= batchSize {
				send()
			}
		case <-t.C:
			send()
		case done := <-e.flush:
			for drained := false; !drained; {
				select {
				case d := <-e.queue:
					batch = append(batch, d)
					if len(batch) >= batchSize {
						send()
					}
				default:
					drained = true
				}
			}
			send()
			close(done)
		}
	}
}

func (e *exporter) export(batch []*spanData) {
	spans := make([]*tracepb.Span, 0, len(batch))
	for _, d := range batch {
		spans = append(spans, d.proto())
	}
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: e.resource,
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "nuncio"},
			Spans: spans,
		}},
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
	defer cancel()
	resp, err := e.client.Export(ctx, req)
	if err != nil {
		e.Stats.Failed.Add(uint64(len(batch)))
		return
	}
	rejected := resp.GetPartialSuccess().GetRejectedSpans()
	if rejected > int64(len(batch)) || rejected < 0 {
		rejected = int64(len(batch))
	}
	e.Stats.Exported.Add(uint64(int64(len(batch)) - rejected))
	e.Stats.Failed.Add(uint64(rejected))
}

func (d *spanData) proto() *tracepb.Span {
	sp := &tracepb.Span{
		TraceId:           append([]byte(nil), d.traceID[:]...),
		SpanId:            append([]byte(nil), d.spanID[:]...),
		Name:              d.name,
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(d.start.UnixNano()),
		EndTimeUnixNano:   uint64(d.end.UnixNano()),
		Flags:             uint32(tracepb.SpanFlags_SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK),
	}
	if d.parentID != ([8]byte{}) {
		sp.ParentSpanId = append([]byte(nil), d.parentID[:]...)
	}
	if d.kind == kindClient {
		sp.Kind = tracepb.Span_SPAN_KIND_CLIENT
	}
	if d.err {
		sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
	}
	for _, a := range d.attrs {
		if a.isNum {
			sp.Attributes = append(sp.Attributes, &commonpb.KeyValue{Key: a.key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: a.num}}})
			continue
		}
		sp.Attributes = append(sp.Attributes, strAttr(a.key, a.str))
	}
	return sp
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

// Flush exports every span finished so far and waits for the exports to complete.
func Flush() {
	for _, e := range allExporters() {
		done := make(chan struct{})
		e.flush <- done
		<-done
	}
}

// CollectorStats is one collector's counters.
type CollectorStats struct {
	Collector string // host:port
	Service   string
	Stats     *Stats
}

// AllStats returns the counters of every collector in use so far.
func AllStats() []CollectorStats {
	var out []CollectorStats
	for _, e := range allExporters() {
		out = append(out, CollectorStats{Collector: e.cfg.CollectorAddress, Service: e.cfg.ServiceName, Stats: &e.Stats})
	}
	return out
}

func allExporters() []*exporter {
	exporters.Lock()
	defer exporters.Unlock()
	out := make([]*exporter, 0, len(exporters.m))
	for _, e := range exporters.m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
