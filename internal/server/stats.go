package server

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/nuncio-gw/nuncio/internal/admin"
	"github.com/nuncio-gw/nuncio/internal/stats"
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
}

func newServerStats(st *stats.Store) *serverStats {
	sc := st.Scope("server")
	cfg := st.Scope("nuncio.config")
	return &serverStats{
		scope: sc, configScope: cfg,
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
