// Package admin serves Nuncio's admin API, a subset of Envoy's (/ready, /server_info,
// /config_dump, /clusters, /listeners, /stats, /stats/prometheus, /logging, /memory, /runtime,
// /reset_counters, /drain_listeners, /healthcheck/fail and /healthcheck/ok, /quitquitquit) with
// Envoy's paths, status codes and output formats, so that the probes, scripts, Prometheus
// scrapes and dashboards written for Envoy work against Nuncio unchanged; and a live dashboard
// of its own at /dashboard.
//
// The package knows nothing of the data plane: it reports what a Source tells it and what the
// stats store holds. The only state it owns is the health-check-failed flag that POST
// /healthcheck/fail sets, which the HTTP layer reads through HealthFailed to fail the health
// checks it answers, so that a load balancer stops sending traffic before the process is
// drained, and the dashboard's recent samples.
//
// This is not the hot path: it uses net/http, and allocates freely.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/stats"
)

// DefaultAddress is where the admin API listens unless told otherwise. It is loopback because
// the API can stop the process and reveals the whole configuration.
const DefaultAddress = "127.0.0.1:9901"

// Options configure a Server.
type Options struct {
	// Address is the TCP address to listen on; DefaultAddress when empty.
	Address string
	// Source reports the state of the gateway. Required.
	Source Source
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Quit is called, once, after POST /quitquitquit has been answered. It must start the
	// shutdown of the process. When nil, /quitquitquit answers 501.
	Quit func()
	// Version is the binary's version, shown on the index page and in /server_info unless the
	// Source reports its own.
	Version string
	// Stats is the store /stats reports; stats.Default when nil.
	Stats *stats.Store
	// LogLevel is the level of the process's logger, which POST /logging changes. When nil,
	// /logging answers 501.
	LogLevel *slog.LevelVar
}

// Server is the admin HTTP server.
type Server struct {
	opts   Options
	log    *slog.Logger
	http   *http.Server
	failed atomic.Bool
	quit   sync.Once
	tags   tagCache
	dash   dashboard

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{} // closed when Serve returns
}

// New checks opts and returns a Server that is not yet listening.
func New(opts Options) (*Server, error) {
	if opts.Source == nil {
		return nil, errors.New("admin: Source is required")
	}
	if opts.Address == "" {
		opts.Address = DefaultAddress
	}
	if _, _, err := net.SplitHostPort(opts.Address); err != nil {
		return nil, fmt.Errorf("admin: address %q: %w", opts.Address, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Stats == nil {
		opts.Stats = stats.Default
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "admin")}
	s.http = &http.Server{
		Handler: s.routes(),
		// The admin API is small requests from operators and probes; the limits only keep a
		// slow or idle client from holding a connection forever.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Start binds the address and serves in the background. It returns once the listener is bound,
// so Addr is valid and requests succeed as soon as it returns.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("admin: already started")
	}
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.ln = ln
	s.done = make(chan struct{})
	if !loopback(ln.Addr()) {
		s.log.Warn("admin API bound to a non-loopback address: anyone who reaches it can read the config and stop the server",
			"address", ln.Addr().String())
	}
	s.log.Info("admin API listening", "address", ln.Addr().String())
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the bound address, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// closeGrace is how long Close lets answers in flight finish. Admin answers take milliseconds;
// the bound only keeps a stuck client from delaying the process's exit.
const closeGrace = time.Second

// Close stops the server: it stops accepting, lets the answers in flight (such as the "OK" to
// the /quitquitquit that may have caused the Close) finish for up to a second, then closes every
// connection. It returns once the serving goroutine has exited. Closing a server that was never
// started does nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.http.Close()
	}
	if done != nil {
		<-done
	}
	return err
}

// HealthFailed reports whether POST /healthcheck/fail is in force. The HTTP layer fails the
// health checks it answers while it is, as Envoy's health_check filter does.
func (s *Server) HealthFailed() bool { return s.failed.Load() }

// state is the state the server reports: the Source's, except that a live server whose health
// check has been failed reports DRAINING, as Envoy does.
func (s *Server) state(info ServerInfo) State {
	if info.State == StateLive && s.failed.Load() {
		return StateDraining
	}
	return info.State
}

// loopback reports whether addr is on a loopback interface only.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
