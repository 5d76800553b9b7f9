package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/snapshot"
	"github.com/nuncio-gw/nuncio/internal/xds/client"
)

// XDSOptions make the data plane an xDS client. A bootstrap with dynamic_resources does so
// too; these options override what it says.
type XDSOptions struct {
	// Address is the management server's host:port.
	Address string
	// NodeID and NodeCluster identify this data plane to the server (node.id, node.cluster).
	NodeID, NodeCluster string
	// Delta selects the incremental protocol.
	Delta bool
	// BackoffMin and BackoffMax bound the reconnection backoff (the client's defaults when 0).
	BackoffMin, BackoffMax time.Duration
}

// xdsState is the running xDS client.
type xdsState struct {
	client *client.Client
	src    atomic.Pointer[bootstrapv3.Bootstrap] // the bootstrap, for config dumps
	cancel context.CancelFunc
	done   chan struct{}
}

// load reads the configuration; a data plane given only --xds starts from an empty one
// rather than the built-in default.
func (s *Server) load() (*model.Bootstrap, *bootstrapv3.Bootstrap, error) {
	if s.opts.ConfigPath == "" && s.opts.XDS != nil {
		return &model.Bootstrap{}, &bootstrapv3.Bootstrap{}, nil
	}
	return Load(s.opts.ConfigPath, s.reg)
}

// applyFirst puts the first configuration in force, starting the xDS client when the
// configuration or the options ask for one.
func (s *Server) applyFirst(b *model.Bootstrap, src *bootstrapv3.Bootstrap) error {
	if s.opts.XDS == nil && b.Dynamic == nil {
		return s.Apply(b, src)
	}
	return s.startXDS(b, src)
}

// applyStatic applies a reloaded configuration file, merged with the dynamic resources when
// the xDS client runs.
func (s *Server) applyStatic(b *model.Bootstrap, src *bootstrapv3.Bootstrap) error {
	if s.xds == nil {
		return s.Apply(b, src)
	}
	s.xds.src.Store(src)
	return s.xds.client.SetStatic(s.withXDSOptions(b, src))
}

func (s *Server) withXDSOptions(b *model.Bootstrap, src *bootstrapv3.Bootstrap) *model.Bootstrap {
	o := s.opts.XDS
	if o == nil {
		return b
	}
	cp := *b
	var dyn model.DynamicResources
	if b.Dynamic != nil {
		dyn = *b.Dynamic
	} else {
		dyn.LDS, dyn.CDS = true, true
	}
	if o.Address != "" {
		dyn.Target = o.Address
	}
	dyn.Delta = dyn.Delta || o.Delta
	cp.Dynamic = &dyn
	if o.NodeID != "" {
		cp.Node.ID = o.NodeID
	}
	if o.NodeCluster != "" {
		cp.Node.Cluster = o.NodeCluster
	}
	return &cp
}

// startXDS creates the xDS client, applies the static configuration through it (whatever
// waits for xDS resources warms) and starts the stream.
func (s *Server) startXDS(b *model.Bootstrap, src *bootstrapv3.Bootstrap) error {
	b = s.withXDSOptions(b, src)
	if b.Dynamic.Target == "" {
		return errors.New("xds: no management server address (--xds or dynamic_resources.ads_config)")
	}
	node := &corev3.Node{}
	if src.GetNode() != nil {
		node = proto.Clone(src.GetNode()).(*corev3.Node)
	}
	node.Id, node.Cluster = b.Node.ID, b.Node.Cluster
	node.UserAgentName = "nuncio"
	node.UserAgentVersionType = &corev3.Node_UserAgentVersion{UserAgentVersion: s.opts.Version}
	var o XDSOptions
	if s.opts.XDS != nil {
		o = *s.opts.XDS
	}
	c := client.New(client.Options{
		Target: b.Dynamic.Target, Node: node, Delta: b.Dynamic.Delta, Static: b,
		Registry: s.reg, Applier: xdsApplier{s}, Logger: s.log,
		BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
	})
	ctx, cancel := context.WithCancel(context.Background())
	x := &xdsState{client: c, cancel: cancel, done: make(chan struct{})}
	x.src.Store(src)
	s.xds = x
	if err := c.Start(); err != nil {
		cancel()
		s.xds = nil
		return err
	}
	go func() {
		defer close(x.done)
		if err := c.Run(ctx); err != nil {
			s.log.Error("xds: client stopped", "error", err)
		}
	}()
	s.log.Info("xds: client started", "server", b.Dynamic.Target, "node", node.GetId(), "delta", b.Dynamic.Delta)
	return nil
}

// stopXDS stops the client before the managers it applies to are closed.
func (s *Server) stopXDS() {
	if s.xds == nil {
		return
	}
	s.xds.cancel()
	<-s.xds.done
}

// xdsApplier is the xDS client's view of the server.
type xdsApplier struct{ s *Server }

// Apply puts a configuration built from the static and the xDS resources in force, as one
// unit.
func (a xdsApplier) Apply(b *model.Bootstrap) error {
	return a.s.Apply(b, a.s.xds.src.Load())
}

// UpdateRoutes swaps RDS route tables into their slots without rebuilding listeners.
func (a xdsApplier) UpdateRoutes(tables map[string]*model.RouteConfig) error {
	s := a.s
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	type swap struct {
		slot  *route.Slot
		table *route.Table
	}
	var swaps []swap
	for name, rc := range tables {
		slot := s.routes.Lookup(snapshot.RDSKey(name))
		if slot == nil {
			return fmt.Errorf("route configuration %q: no listener uses it", name)
		}
		t, err := route.Compile(rc, s.clusters.Ref)
		if err != nil {
			return fmt.Errorf("route configuration %q: %w", name, err)
		}
		swaps = append(swaps, swap{slot, t})
	}
	for _, sw := range swaps {
		sw.slot.Store(sw.table)
	}
	// The snapshot's model is what config dumps and the next build's comparisons read.
	if cur := s.store.Load(); cur != nil {
		next, m := *cur, *cur.Model
		m.RouteConfigs = slices.Clone(m.RouteConfigs)
		for i, rc := range m.RouteConfigs {
			if t := tables[rc.Name]; t != nil {
				m.RouteConfigs[i] = t
			}
		}
		next.Model = &m
		s.store.Swap(&next)
	}
	return nil
}

// SetEndpoints replaces a running EDS cluster's endpoints.
func (a xdsApplier) SetEndpoints(cluster string, ls []model.LocalityEndpoints) error {
	return a.s.clusters.SetEndpoints(cluster, ls)
}
