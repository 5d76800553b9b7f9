// Package xdsserver serves xDS resources to any number of data planes over ADS, in both the
// state-of-the-world and the incremental (delta) protocols, with go-control-plane's server and
// snapshot cache.
//
// Every node gets a snapshot of its own in the cache, keyed by its node id (the cache's IDHash),
// set when the node's first stream opens and cleared when its last one closes; for now every
// node is given the same resources. Versions come from content hashes (see newSnapshot), which
// decides what an update pushes:
//
//   - delta streams are sent only the resources that changed: one changed route configuration
//     is one RouteConfiguration on the wire;
//   - state-of-the-world streams are sent every resource of a type whose version changed, as the
//     protocol requires (a response holds the full set of the subscribed names): one changed
//     route configuration resends all the route configurations the stream subscribed to, but no
//     listener, cluster or endpoint.
package xdsserver

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

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// adsService is the name the health service reports the ADS service under.
const adsService = "envoy.service.discovery.v3.AggregatedDiscoveryService"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives updates, connects and NACKs; nil discards them.
	Logger *slog.Logger
	// DrainTime bounds a graceful stop: streams still open after it are cut. Default 5s.
	DrainTime time.Duration
	// Keepalive overrides the server's keepalive parameters (see New for the defaults).
	Keepalive *keepalive.ServerParameters
}

// Server is an ADS server backed by a per-node snapshot cache.
type Server struct {
	log    *slog.Logger
	drain  time.Duration
	cache  cachev3.SnapshotCache
	grpc   *grpc.Server
	health *health.Server
	// stop ends the xDS streams: go-control-plane's handlers return when its context ends,
	// which grpc.Server.GracefulStop alone would wait for forever.
	stop context.CancelFunc

	// vmu serialises snapshot building, whose versions reuse the previous snapshot's.
	vmu      sync.Mutex
	versions versioner

	mu      sync.Mutex
	current *cachev3.Snapshot
	nodes   map[string]int       // node id → open streams
	streams map[streamKey]string // stream → node id, once its first request named the node
	ready   atomic.Bool          // a snapshot is set
	closing atomic.Bool          // Serve is draining
	updates atomic.Uint64        // snapshots set, for tests and logs
}

// New returns a server with nothing to serve yet; data planes that connect before the first
// Update wait for it.
//
// The gRPC server pings an idle client every 30s and drops it after 5s without an answer, so
// a data plane that vanished without closing its connection (a killed node, a partition) does
// not hold a stream and its node's snapshot forever. Clients may ping every 10s at most, with
// or without streams, which covers Envoy's and grpc-go's keepalive settings.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drain := opts.DrainTime
	if drain <= 0 {
		drain = 5 * time.Second
	}
	kp := keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}
	if opts.Keepalive != nil {
		kp = *opts.Keepalive
	}
	s := &Server{
		log:     log,
		drain:   drain,
		health:  health.NewServer(),
		nodes:   map[string]int{},
		streams: map[streamKey]string{},
	}
	// ads=false: answer a request for some of a type's resources without waiting for the
	// client to name all of them. Envoy names every route and cluster it was told of, but a
	// gRPC client subscribes only to what its channels use, and in ADS mode the cache would
	// never answer it.
	s.cache = cachev3.NewSnapshotCache(false, cachev3.IDHash{}, cacheLogger{log})
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	xds := serverv3.NewServer(ctx, s.cache, s.callbacks())
	s.grpc = grpc.NewServer(
		grpc.KeepaliveParams(kp),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// One ADS stream per data plane; the default limit of 100 would cap the replicas.
		grpc.MaxConcurrentStreams(1<<20),
	)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.grpc, xds)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(adsService, healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// Update makes r the resources of every node, connected now or later, and returns what
// changed. Only the types and, for delta streams, the resources that changed are pushed.
func (s *Server) Update(r xdsresources.Resources) (Diff, error) {
	s.vmu.Lock()
	snap, err := newSnapshot(r, &s.versions)
	s.vmu.Unlock()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := diff(s.current, snap)
	if s.current != nil && d.Empty() {
		return d, nil
	}
	s.current = snap
	// Under s.mu, so that a node that connects meanwhile gets either this snapshot here or, in
	// its stream callback, the one just stored. SetSnapshot does not block: every stream's
	// response channel has room for one response per type.
	for node := range s.nodes {
		if err := s.cache.SetSnapshot(context.Background(), node, snap); err != nil {
			return d, fmt.Errorf("xdsserver: node %q: %w", node, err)
		}
	}
	s.updates.Add(1)
	if !s.ready.Swap(true) && !s.closing.Load() {
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		s.health.SetServingStatus(adsService, healthpb.HealthCheckResponse_SERVING)
	}
	return d, nil
}

// Nodes returns the number of nodes with at least one open stream.
func (s *Server) Nodes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.nodes)
}

// Version returns the current version of a resource type ("" before the first Update).
func (s *Server) Version(typeURL string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current.GetVersion(typeURL)
}

// Serve accepts data planes on lis until ctx is done, then drains: health turns NOT_SERVING,
// no new connection is accepted, open streams are ended so that data planes reconnect to
// another controller (keeping their last config meanwhile), and after DrainTime whatever is
// left is cut.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("xdsserver: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("xds: draining", "drain_time", s.drain)
	s.closing.Store(true)
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	s.stop()
	t := time.NewTimer(s.drain)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.log.Warn("xds: drain time over, closing the remaining streams", "drain_time", s.drain)
		s.grpc.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("xdsserver: %w", err)
	}
	return nil
}

// Run feeds src into the server and serves on lis until ctx is done or src fails.
func (s *Server) Run(ctx context.Context, src source.Source, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan xdsresources.Resources, 1)
	srcErr := make(chan error, 1)
	go func() {
		err := src.Run(ctx, updates)
		if err != nil {
			cancel()
		}
		srcErr <- err
	}()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, lis) }()
	for {
		select {
		case r := <-updates:
			start := time.Now()
			d, err := s.Update(r)
			if err != nil {
				s.log.Error("xds: update failed, keeping the previous resources", "error", err)
				continue
			}
			s.log.Info("xds: resources updated", "changes", d.String(), "resources", r.Len(),
				"nodes", s.Nodes(), "took", time.Since(start).Round(time.Microsecond))
		case err := <-served:
			// Serve ended first: the listener failed.
			cancel()
			<-srcErr
			return err
		case <-ctx.Done():
			serveErr := <-served
			if err := <-srcErr; err != nil {
				return err
			}
			return serveErr
		}
	}
}

// HealthHandler answers HTTP health checks: /healthz is 200 while the server runs, /readyz is
// 200 once it has resources to serve and until it drains, 503 otherwise. The same states are
// served over gRPC's health service on the xDS port, under "" and the ADS service name.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.closing.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case s.closing.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !s.ready.Load():
			http.Error(w, "no resources yet", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	return mux
}

// callbacks give every node its snapshot when its first stream opens, drop it when its last
// stream closes, and log NACKs.
func (s *Server) callbacks() serverv3.Callbacks {
	return serverv3.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			s.opened(streamKey{id: id}, req.GetNode())
			if e := req.GetErrorDetail(); e != nil {
				s.nack(req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), e.GetMessage())
			}
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) { s.closed(streamKey{id: id}) },
		StreamDeltaRequestFunc: func(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			s.opened(streamKey{delta: true, id: id}, req.GetNode())
			if e := req.GetErrorDetail(); e != nil {
				s.nack(req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), e.GetMessage())
			}
			return nil
		},
		DeltaStreamClosedFunc: func(id int64, _ *corev3.Node) { s.closed(streamKey{delta: true, id: id}) },
	}
}

// streamKey names a stream: go-control-plane numbers state-of-the-world and delta streams
// with separate counters.
type streamKey struct {
	delta bool
	id    int64
}

// opened registers a stream's node on the stream's first request, the one that must carry
// the node.
func (s *Server) opened(id streamKey, node *corev3.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.streams[id]; ok {
		return
	}
	nodeID := cachev3.IDHash{}.ID(node)
	s.streams[id] = nodeID
	s.nodes[nodeID]++
	if s.nodes[nodeID] > 1 {
		return
	}
	s.log.Info("xds: node connected", "node", nodeID, "cluster", node.GetCluster(), "nodes", len(s.nodes))
	if s.current != nil {
		// Before the stream's watch is created, so that the first request is answered at once.
		if err := s.cache.SetSnapshot(context.Background(), nodeID, s.current); err != nil {
			s.log.Error("xds: set snapshot", "node", nodeID, "error", err)
		}
	}
}

func (s *Server) closed(id streamKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nodeID, ok := s.streams[id]
	if !ok {
		return
	}
	delete(s.streams, id)
	if s.nodes[nodeID]--; s.nodes[nodeID] > 0 {
		return
	}
	delete(s.nodes, nodeID)
	s.cache.ClearSnapshot(nodeID)
	s.log.Info("xds: node disconnected", "node", nodeID, "nodes", len(s.nodes))
}

func (s *Server) nack(node *corev3.Node, typeURL, nonce, msg string) {
	s.log.Warn("xds: update rejected by data plane", "node", node.GetId(), "type", typeURL, "nonce", nonce, "error", msg)
}

// cacheLogger sends go-control-plane's logs to slog: its info and debug lines are per request,
// so both go to debug.
type cacheLogger struct{ l *slog.Logger }

func (c cacheLogger) Debugf(format string, args ...any) { c.debug(format, args) }
func (c cacheLogger) Infof(format string, args ...any)  { c.debug(format, args) }
func (c cacheLogger) Warnf(format string, args ...any)  { c.l.Warn(fmt.Sprintf(format, args...)) }
func (c cacheLogger) Errorf(format string, args ...any) { c.l.Error(fmt.Sprintf(format, args...)) }

func (c cacheLogger) debug(format string, args []any) {
	if c.l.Enabled(context.Background(), slog.LevelDebug) {
		c.l.Debug(fmt.Sprintf(format, args...))
	}
}
