// Package server runs the data plane in one process: it loads the configuration, applies it
// to the cluster and listener managers as one unit (keeping the last good configuration when a
// new one fails), reloads it when the file changes or on SIGHUP, serves the admin API and
// drains gracefully on shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/nuncio-gw/nuncio/internal/admin"
	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/listener"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/snapshot"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// Options configure a Server.
type Options struct {
	// ConfigPath is the simple or Envoy config file; empty serves the built-in default.
	ConfigPath string
	// AdminAddress overrides the config's admin address.
	AdminAddress string
	// DrainTime bounds the graceful drain on shutdown.
	DrainTime time.Duration
	Logger    *slog.Logger
	LogLevel  string
	// LevelVar is the level of Logger's handler; when set, the admin API's /logging changes it.
	LevelVar *slog.LevelVar
	// Stats is where the server's own stats go; stats.Default when nil.
	Stats *stats.Store
	// Registry resolves HTTP filter type URLs; httpfilter.Default when nil.
	Registry *httpfilter.Registry
	Version  string
	// Watch reloads the config file when it changes.
	Watch bool
	// XDS makes the data plane an xDS client (`nuncio run --xds`).
	XDS *XDSOptions
}

// Server is a running data plane.
type Server struct {
	opts      Options
	log       *slog.Logger
	reg       *httpfilter.Registry
	clusters  *cluster.Manager
	listeners *listener.Manager
	store     snapshot.Store
	routes    *snapshot.RouteSlots
	admin     *admin.Server
	// adminLive is admin once it serves; request goroutines read it to learn whether health
	// checks were failed, so it must not be the plain field Run assigns.
	adminLive atomic.Pointer[admin.Server]
	started   time.Time
	state     atomic.Uint32 // admin.State

	applyMu  sync.Mutex
	rejected atomic.Pointer[Rejection]
	xds      *xdsState
	stats    *serverStats
	draining atomic.Bool // POST /drain_listeners was served
	quit     chan struct{}
	quitOnce sync.Once
}

// Rejection records the last configuration update that was refused.
type Rejection struct {
	At     time.Time
	Reason string
}

// New returns a server that is not yet running.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = httpfilter.Default
	}
	if opts.DrainTime == 0 {
		opts.DrainTime = 10 * time.Second
	}
	if opts.Stats == nil {
		opts.Stats = stats.Default
	}
	s := &Server{
		opts: opts, log: opts.Logger, reg: opts.Registry, started: time.Now(),
		quit: make(chan struct{}), routes: snapshot.NewRouteSlots(), stats: newServerStats(opts.Stats),
	}
	s.clusters = cluster.NewManager(cluster.Options{Logger: opts.Logger})
	s.listeners = listener.NewManager(listener.Options{Logger: opts.Logger, DrainTime: opts.DrainTime})
	return s
}

// Load reads and decodes a config file (or the built-in default when path is empty).
func Load(path string, reg *httpfilter.Registry) (*model.Bootstrap, *bootstrapv3.Bootstrap, error) {
	if path == "" {
		src := bootstrap.Default()
		b, err := decode.Bootstrap(src, reg)
		if err != nil {
			return nil, nil, fmt.Errorf("built-in config: %w", err)
		}
		return b, src, nil
	}
	data, err := bootstrap.Read(path)
	if err != nil {
		return nil, nil, err
	}
	return Decode(path, data, reg)
}

// Decode parses and decodes the bytes of the config file at path, in either format. Every
// error starts with path.
func Decode(path string, data []byte, reg *httpfilter.Registry) (*model.Bootstrap, *bootstrapv3.Bootstrap, error) {
	src, err := bootstrap.Parse(path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err := decode.Bootstrap(src, reg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, src, nil
}

// Run loads the configuration, starts serving and blocks until ctx is cancelled (SIGTERM)
// or the admin API asks to quit; then it drains and returns. A first configuration that does
// not load is an error: there is nothing good to keep.
func (s *Server) Run(ctx context.Context) error {
	s.state.Store(uint32(admin.StateInitializing))
	// SIGHUP and the watch are set up before the first read, so a change saved (or a
	// SIGHUP sent) while the config loads is not missed, and SIGHUP never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var changes <-chan struct{}
	if s.opts.Watch && s.opts.ConfigPath != "" {
		w, err := bootstrap.Watch(s.opts.ConfigPath, bootstrap.WatchOptions{Logger: s.log})
		if err != nil {
			s.log.Warn("config file is not watched; reload with SIGHUP", "error", err)
		} else {
			defer w.Close()
			changes = w.Changes()
		}
	}
	b, src, err := s.load()
	if err != nil {
		return err
	}
	if err := s.applyFirst(b, src); err != nil {
		s.clusters.Close()
		s.listeners.Close()
		s.stats.release()
		return err
	}
	s.stats.updateSuccess.Inc()
	adminAddr := s.opts.AdminAddress
	if adminAddr == "" && b.Admin != nil {
		adminAddr = net.JoinHostPort(b.Admin.Address.Host, strconv.FormatUint(uint64(b.Admin.Address.Port), 10))
	}
	s.admin, err = admin.New(admin.Options{
		Address: adminAddr, Source: s, Logger: s.log, Version: s.opts.Version,
		Quit:  func() { s.quitOnce.Do(func() { close(s.quit) }) },
		Stats: s.opts.Stats, LogLevel: s.opts.LevelVar,
	})
	if err == nil {
		err = s.admin.Start()
	}
	if err != nil {
		s.stopXDS()
		s.listeners.Close()
		s.clusters.Close()
		return fmt.Errorf("admin: %w", err)
	}
	s.adminLive.Store(s.admin)
	// An xDS data plane is INITIALIZING (503 on /ready) until its first listeners and
	// clusters arrive and warm, or their initial_fetch_timeout passes, as Envoy.
	var initialized <-chan struct{}
	if s.xds != nil {
		initialized = s.xds.client.Initialized()
	} else {
		s.state.Store(uint32(admin.StateLive))
	}
	s.log.Info("nuncio serving", "listeners", s.listenerSummary(), "admin", s.admin.Addr().String())

	for {
		select {
		case <-initialized:
			initialized = nil
			s.state.Store(uint32(admin.StateLive))
			s.log.Info("xds: initialized; live", "listeners", s.listenerSummary())
		case <-hup:
			s.Reload()
		case <-changes:
			s.Reload()
		case <-ctx.Done():
			return s.shutdown()
		case <-s.quit:
			return s.shutdown()
		}
	}
}

// Reload re-reads the config file and applies it; on failure the running config stays.
func (s *Server) Reload() error {
	if s.opts.ConfigPath == "" {
		return nil
	}
	b, src, err := Load(s.opts.ConfigPath, s.reg)
	if err == nil {
		err = s.applyStatic(b, src)
	}
	if err != nil {
		s.rejected.Store(&Rejection{At: time.Now(), Reason: err.Error()})
		s.stats.updateRejected.Inc()
		s.log.Error("config rejected; previous config stays in force", "error", err)
		return err
	}
	s.stats.updateSuccess.Inc()
	s.log.Info("config applied", "version", s.store.Load().Version, "listeners", s.listenerSummary())
	return nil
}

// Apply compiles b and puts it in force as one unit: when any part fails, whatever was
// already changed is rolled back and the previous configuration keeps serving.
func (s *Server) Apply(b *model.Bootstrap, src *bootstrapv3.Bootstrap) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	snap, err := s.build(b, src)
	if err != nil {
		return err
	}
	prev := s.store.Load()
	if err := s.clusters.Apply(b.Clusters); err != nil {
		return err
	}
	rollback := snap.Commit()
	if err := s.applyListeners(prev, snap); err != nil {
		rollback()
		var clusters []*model.Cluster
		if prev != nil {
			clusters = prev.Model.Clusters
		}
		if rerr := s.clusters.Apply(clusters); rerr != nil {
			s.log.Error("restoring clusters after a failed update", "error", rerr)
		}
		return err
	}
	s.store.Swap(snap)
	return nil
}

// build compiles b against the server's clusters and route slots; nothing is in force until
// the snapshot is committed and its listeners applied.
func (s *Server) build(b *model.Bootstrap, src *bootstrapv3.Bootstrap) (*snapshot.Snapshot, error) {
	return snapshot.Build(b, src, snapshot.Options{
		Clusters: s.clusters, Logger: s.log, HealthFailed: s.healthFailed, Routes: s.routes,
	})
}

// applyListeners puts next's listeners in force. The listener manager applies a set in one
// pass and stops the listeners it does not name before binding new ones, so a bind failure
// part way would leave removed listeners stopped and new ones running. Hence two steps: first
// the new set is bound while the listeners the update removes keep running; only then are
// those removed. A new listener on the port of a removed one must wait for that one to release
// it, so it binds in the second step. When either step fails, the previous set is applied
// again; a listener on port 0 that had to be re-bound then gets a new port.
func (s *Server) applyListeners(prev, next *snapshot.Snapshot) error {
	var old []*listener.Compiled
	if prev != nil {
		old = prev.Listeners
	}
	kept := make(map[string]bool, len(next.Listeners))
	for _, cc := range next.Listeners {
		kept[cc.Model.Name] = true
	}
	oldByName := make(map[string]*listener.Compiled, len(old))
	freed := map[uint32]bool{} // ports of removed listeners
	var stage []*listener.Compiled
	for _, cc := range old {
		oldByName[cc.Model.Name] = cc
		if !kept[cc.Model.Name] {
			stage = append(stage, cc)
			if p := cc.Model.Address.Port; p != 0 {
				freed[p] = true
			}
		}
	}
	twoSteps := len(stage) > 0
	for _, cc := range next.Listeners {
		if freed[cc.Model.Address.Port] {
			if o := oldByName[cc.Model.Name]; o != nil {
				stage = append(stage, o)
			}
			continue
		}
		stage = append(stage, cc)
	}
	if !twoSteps {
		stage = next.Listeners
	}
	err := s.listeners.Apply(stage)
	if err == nil && twoSteps {
		err = s.listeners.Apply(next.Listeners)
	}
	if err != nil {
		if rerr := s.listeners.Apply(old); rerr != nil {
			s.log.Error("restoring listeners after a failed update", "error", rerr)
		}
	}
	return err
}

func (s *Server) healthFailed() bool {
	a := s.adminLive.Load()
	return a != nil && a.HealthFailed()
}

// shutdown stops accepting, drains connections within DrainTime and stops everything.
func (s *Server) shutdown() error {
	s.state.Store(uint32(admin.StateDraining))
	s.stopXDS()
	s.log.Info("draining", "drain_time", s.opts.DrainTime.String())
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTime)
	s.listeners.Drain(ctx)
	cancel()
	s.listeners.Close()
	s.clusters.Close()
	if s.admin != nil {
		s.admin.Close()
	}
	s.stats.release()
	s.log.Info("stopped")
	return nil
}

// Snapshot returns the configuration in force.
func (s *Server) Snapshot() *snapshot.Snapshot { return s.store.Load() }

// LastRejection returns the last refused update, or nil.
func (s *Server) LastRejection() *Rejection { return s.rejected.Load() }

// ListenerStatus reports the bound listeners.
func (s *Server) ListenerStatus() []listener.Status { return s.listeners.Listeners() }

func (s *Server) listenerSummary() []string {
	var out []string
	for _, l := range s.listeners.Listeners() {
		out = append(out, l.Name+"="+l.Address.String())
	}
	return out
}

// ServerInfo implements admin.Source.
func (s *Server) ServerInfo() admin.ServerInfo {
	return admin.ServerInfo{
		Version:            s.opts.Version,
		State:              admin.State(s.state.Load()),
		UptimeCurrentEpoch: time.Since(s.started),
		CommandLineOptions: admin.CommandLineOptions{
			ConfigPath: s.opts.ConfigPath, LogLevel: s.opts.LogLevel,
			Concurrency: uint32(runtime.GOMAXPROCS(0)), DrainTime: s.opts.DrainTime, Mode: "Serve",
		},
	}
}

// Listeners implements admin.Source.
func (s *Server) Listeners() []admin.ListenerStatus {
	var out []admin.ListenerStatus
	for _, l := range s.listeners.Listeners() {
		out = append(out, admin.ListenerStatus{
			Name: l.Name, Address: l.Address.String(), ActiveConnections: uint64(l.ActiveConnections),
		})
	}
	return out
}

// Clusters implements admin.Source.
func (s *Server) Clusters() []admin.ClusterStatus {
	var out []admin.ClusterStatus
	for _, c := range s.clusters.Clusters() {
		cs := admin.ClusterStatus{Name: c.Name}
		for _, h := range c.Hosts() {
			st := h.Pool.Stats()
			var health admin.HealthFlags
			if !h.Healthy {
				health |= admin.FailedEDSHealth
			}
			f := h.HealthFlags()
			if f&cluster.FailedActiveHC != 0 {
				health |= admin.FailedActiveHC
			}
			if f&cluster.PendingActiveHC != 0 {
				health |= admin.PendingActiveHC
			}
			if f&cluster.ActiveHCTimeout != 0 {
				health |= admin.ActiveHCTimeout
			}
			if f&cluster.FailedOutlierCheck != 0 {
				health |= admin.FailedOutlierCheck
			}
			cs.Hosts = append(cs.Hosts, admin.HostStatus{
				Address: h.Address, Weight: h.Weight, Health: health,
				ActiveRequests:    uint64(h.ActiveRequests()),
				ActiveConnections: uint64(st.Active + st.Idle),
				TotalConnections:  st.Connects,
			})
		}
		out = append(out, cs)
	}
	return out
}

// ErrNoConfig is returned by ConfigDump before the first configuration is applied.
var ErrNoConfig = errors.New("no configuration applied yet")
