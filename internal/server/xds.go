package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/snapshot"
	upstreamtls "github.com/nuncio-gw/nuncio/internal/upstream"
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
	// TLSCA is a PEM file of the CAs that sign the management server's certificate; set, the
	// connection uses TLS and verifies the server's name (the host of Address).
	TLSCA string
}

// defaultInitialFetchTimeout is Envoy's, for the listeners and clusters of `--xds`, which has
// no lds_config or cds_config to say otherwise.
const defaultInitialFetchTimeout = 15 * time.Second

// xdsKeepalive pings the management server when the stream has been quiet for a minute, so
// that a server (or a NAT on the way) gone silently is noticed within about a minute and a
// half rather than at the next TCP retransmission timeout. grpc-go servers refuse pings more
// often than every 5 minutes unless told otherwise (the controller allows every 10 s); grpc-go
// then doubles the interval itself after the server's GOAWAY.
var xdsKeepalive = keepalive.ClientParameters{Time: time.Minute, Timeout: 20 * time.Second}

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
		dyn.LDSSource.InitialFetchTimeout = defaultInitialFetchTimeout
		dyn.CDSSource.InitialFetchTimeout = defaultInitialFetchTimeout
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
	creds, err := xdsCredentials(b, o)
	if err != nil {
		return err
	}
	c := client.New(client.Options{
		Target: b.Dynamic.Target, Node: node, Delta: b.Dynamic.Delta, Static: b,
		Registry: s.reg, Applier: xdsApplier{s}, Logger: s.log, Stats: s.opts.Stats,
		BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithKeepaliveParams(xdsKeepalive)},
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

// xdsCredentials secures the connection to the management server: with --xds-tls-ca, TLS
// verified against that CA; with ads_config's envoy_grpc cluster, that cluster's
// UpstreamTlsContext, as Envoy connects to it; otherwise plaintext.
func xdsCredentials(b *model.Bootstrap, o XDSOptions) (credentials.TransportCredentials, error) {
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("xds: --xds-tls-ca: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xds: --xds-tls-ca %s: no PEM certificates", o.TLSCA)
		}
		return credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}), nil
	}
	if name := b.Dynamic.ADSCluster; name != "" {
		for _, c := range b.Clusters {
			if c.Name != name || c.TLS == nil {
				continue
			}
			if c.TLS.ClientCertSecret != nil || c.TLS.ValidationSecret != nil {
				return nil, fmt.Errorf("xds: cluster %q: the ADS cluster's TLS cannot use SDS secrets, which come over ADS", name)
			}
			cfg, err := upstreamtls.BuildTLS(c.TLS)
			if err != nil {
				return nil, fmt.Errorf("xds: cluster %q: %w", name, err)
			}
			return credentials.NewTLS(cfg), nil
		}
	}
	return insecure.NewCredentials(), nil
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
