package hcm

import (
	"fmt"
	"time"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/tracing"
)

// observers are a connection manager's access loggers and tracer.
type observers struct {
	logs   []*accesslog.Logger
	tracer *tracing.Tracer
}

func newObservers(m *model.HTTPConnectionManager) (observers, error) {
	var o observers
	for i, l := range m.AccessLogs {
		al, ok := l.(*accesslog.Logger)
		if !ok {
			return o, fmt.Errorf("hcm %q: access_log[%d]: not a compiled access logger (%T)", m.StatPrefix, i, l)
		}
		o.logs = append(o.logs, al)
	}
	if m.Tracing != nil {
		o.tracer = tracing.New(m.Tracing)
	}
	return o, nil
}

// startSpan begins the request's trace span, before any filter runs, so the context it
// writes into the request headers goes upstream.
func (s *stream) startSpan() {
	if t := s.cfg.obs.tracer; t != nil {
		s.Span = t.Start(&s.Stream)
	}
}

// observe writes the access logs and ends the trace span of a finished stream. A stream that
// never received a request (an idle connection closing) has no start time and is not logged.
func (s *stream) observe() {
	o := &s.cfg.obs
	if s.Info.Start.IsZero() || (len(o.logs) == 0 && s.Span == nil) {
		return
	}
	now := time.Now()
	if sp, ok := s.Span.(*tracing.Span); ok {
		sp.Finish(&s.Stream, now)
	}
	for _, l := range o.logs {
		l.Log(&s.Stream, now)
	}
}
