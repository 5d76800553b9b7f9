package server

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/nuncio-gw/nuncio/internal/accesslog"
	"github.com/nuncio-gw/nuncio/internal/admin"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/tracing"
)

// serverStats are the process-wide stats under Envoy's server.* names, and the config update
// counters. The gauges are computed when read (RefreshStats) rather than on a timer: the admin
// API is their only reader.
type serverStats struct {
	scope          *stats.Scope
	live           *stats.Gauge
	state          *stats.Gauge
	uptime         *stats.Gauge
	concurrency    *stats.Gauge
	memAllocated   *stats.Gauge
	memHeapSize    *stats.Gauge
	memPhysical    *stats.Gauge
	totalConns     *stats.Gauge
	updateSuccess  *stats.Counter
	updateRejected *stats.Counter
	// Envoy has no stat for reloads of a static file, so these are under nuncio.config.
	configScope *stats.Scope

	// The access log writers' and trace exporters' own counters, mirrored at read time under
	// Envoy's names (access_logs.file.*, tracing.opentelemetry.*) summed over every output.
	logScope                                       *stats.Scope
	logBuffered, logCompleted, logFailed, logTimer *stats.Counter
	logReopenFailed, logDropped                    *stats.Counter
	traceScope                                     *stats.Scope
	spansSent, spansDropped, spansFailed           *stats.Counter
}

func newServerStats(st *stats.Store) *serverStats {
	sc := st.Scope("server")
	cfg := st.Scope("nuncio.config")
	logs := st.Scope("access_logs.file")
	trace := st.Scope("tracing.opentelemetry")
	return &serverStats{
		logScope: logs, logBuffered: logs.Counter("write_buffered"), logCompleted: logs.Counter("write_completed"),
		logFailed: logs.Counter("write_failed"), logTimer: logs.Counter("flushed_by_timer"),
		logReopenFailed: logs.Counter("reopen_failed"), logDropped: logs.Counter("write_dropped"),
		traceScope: trace, spansSent: trace.Counter("spans_sent"), spansDropped: trace.Counter("spans_dropped"),
		spansFailed: trace.Counter("spans_failed"),
		scope:       sc, configScope: cfg,
		live: sc.Gauge("live"), state: sc.Gauge("state"), uptime: sc.Gauge("uptime"),
		concurrency: sc.Gauge("concurrency"), memAllocated: sc.Gauge("memory_allocated"),
		memHeapSize: sc.Gauge("memory_heap_size"), memPhysical: sc.Gauge("memory_physical_size"),
		totalConns:    sc.Gauge("total_connections"),
		updateSuccess: cfg.Counter("update_success"), updateRejected: cfg.Counter("update_rejected"),
	}
}

func (ss *serverStats) release() {
	ss.scope.Release()
	ss.configScope.Release()
	ss.logScope.Release()
	ss.traceScope.Release()
}

// mirrorOutputs copies the access log and tracing components' counters into the store.
func (ss *serverStats) mirrorOutputs() {
	var buffered, completed, failed, timer, reopen, dropped uint64
	for _, o := range accesslog.AllStats() {
		buffered += o.Stats.WriteBuffered.Value()
		completed += o.Stats.WriteCompleted.Value()
		failed += o.Stats.WriteFailed.Value()
		timer += o.Stats.FlushedByTimer.Value()
		reopen += o.Stats.ReopenFailed.Value()
		dropped += o.Stats.Dropped.Value()
	}
	ss.logBuffered.Set(buffered)
	ss.logCompleted.Set(completed)
	ss.logFailed.Set(failed)
	ss.logTimer.Set(timer)
	ss.logReopenFailed.Set(reopen)
	ss.logDropped.Set(dropped)
	var sent, sdropped, sfailed uint64
	for _, c := range tracing.AllStats() {
		sent += c.Stats.Exported.Value()
		sdropped += c.Stats.Dropped.Value()
		sfailed += c.Stats.Failed.Value()
	}
	ss.spansSent.Set(sent)
	ss.spansDropped.Set(sdropped)
	ss.spansFailed.Set(sfailed)
}

// envoyState is Envoy's server.state value for a state: 0 live, 1 draining, 2
// pre-initializing, 3 initializing.
func envoyState(st admin.State) int64 {
	switch st {
	case admin.StateLive:
		return 0
	case admin.StateDraining:
		return 1
	case admin.StatePreInitializing:
		return 2
	}
	return 3
}

// RefreshStats implements admin.StatsRefresher.
func (s *Server) RefreshStats() {
	ss := s.stats
	st := admin.State(s.state.Load())
	if st == admin.StateLive && s.healthFailed() {
		st = admin.StateDraining
	}
	live := int64(0)
	if st == admin.StateLive {
		live = 1
	}
	ss.live.Set(live)
	ss.state.Set(envoyState(st))
	ss.uptime.Set(int64(time.Since(s.started) / time.Second))
	ss.concurrency.Set(int64(runtime.GOMAXPROCS(0)))
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	ss.memAllocated.Set(int64(m.HeapAlloc))
	ss.memHeapSize.Set(int64(m.HeapSys))
	ss.memPhysical.Set(int64(m.Sys - m.HeapReleased))
	var conns int64
	for _, l := range s.listeners.Listeners() {
		conns += int64(l.ActiveConnections)
	}
	ss.totalConns.Set(conns)
	ss.mirrorOutputs()
}

// ConfigStatus implements admin.ConfigReporter.
func (s *Server) ConfigStatus() admin.ConfigStatus {
	var cs admin.ConfigStatus
	if snap := s.store.Load(); snap != nil {
		cs.Version = formatVersion(snap.Version)
		cs.AppliedAt = snap.Built
	}
	if r := s.rejected.Load(); r != nil {
		cs.LastRejection = &admin.Rejection{At: r.At, Reason: r.Reason}
	}
	return cs
}

// errDraining is returned by DrainListeners when a drain is already under way.
var errDraining = errors.New("listeners are already draining")

// DrainListeners implements admin.ListenerDrainer. The listeners stop accepting; the process
// keeps running (and its admin API answering) until it is told to quit, as with Envoy.
func (s *Server) DrainListeners(graceful bool) error {
	if !s.draining.CompareAndSwap(false, true) {
		return errDraining
	}
	s.state.Store(uint32(admin.StateDraining))
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTime)
	if !graceful {
		cancel() // an expired drain closes every connection at once
	}
	go func() {
		defer cancel()
		s.listeners.Drain(ctx)
		s.log.Info("listeners drained")
	}()
	return nil
}

var (
	_ admin.StatsRefresher  = (*Server)(nil)
	_ admin.ConfigReporter  = (*Server)(nil)
	_ admin.ListenerDrainer = (*Server)(nil)
)
