// Package client is the data plane's xDS client: one ADS stream (state of the world or
// incremental) to a management server, carrying listeners, route tables, clusters, endpoint
// assignments and TLS secrets.
//
// Resources are decoded as they arrive; a response that does not decode, or whose
// configuration fails to apply, is refused whole with a NACK whose error_detail names the
// resource and the field, and the last good configuration stays in force. Listeners and
// clusters from the server are merged with the bootstrap's static ones into one model.
// A listener waits (warms) until the route tables and secrets it names arrive; a cluster
// waits for its endpoints and secrets. Route table and endpoint updates that change nothing
// else go straight to their slots (Applier.UpdateRoutes, Applier.SetEndpoints); everything
// else is applied as a whole (Applier.Apply), which the data plane rolls back as a unit.
//
// When the stream fails, the client reconnects with jittered exponential backoff and keeps
// the configuration it has; on the new stream it tells the server what it already holds
// (version_info, or initial_resource_versions for the incremental protocol).
package client

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// Applier puts configurations in force. Its methods are called one at a time.
type Applier interface {
	// Apply puts a whole configuration in force, or changes nothing and returns an error.
	Apply(b *model.Bootstrap) error
	// UpdateRoutes replaces the RDS route tables named by the map's keys, all or none.
	UpdateRoutes(tables map[string]*model.RouteConfig) error
	// SetEndpoints replaces the endpoints of a running EDS cluster.
	SetEndpoints(cluster string, ls []model.LocalityEndpoints) error
}

// Options configure a Client.
type Options struct {
	// Target is the management server's gRPC address (host:port).
	Target string
	// Node identifies this data plane; it is sent on the first request of every stream.
	Node *corev3.Node
	// Delta selects the incremental protocol (DeltaAggregatedResources).
	Delta bool
	// Static is the bootstrap's configuration: its listeners and clusters are served along
	// with the server's, and its Dynamic field says which types to subscribe to. Nil means
	// no static resources, subscribed to all listeners and clusters.
	Static *model.Bootstrap
	// Registry resolves HTTP filter type URLs; httpfilter.Default when nil.
	Registry *httpfilter.Registry
	Applier  Applier
	Logger   *slog.Logger
	// BackoffMin and BackoffMax bound the wait between reconnection attempts, which doubles
	// from BackoffMin on each failure, with jitter (defaults 500 ms and 30 s, Envoy's).
	BackoffMin, BackoffMax time.Duration
	// DialOptions are added to the gRPC dial: transport credentials replace the default,
	// plaintext.
	DialOptions []grpc.DialOption
	// Stats receives the update counters; stats.Default when nil.
	Stats *stats.Store
}

// Client is an ADS client. Create it with New, put the static configuration in force with
// Start, then Run it.
type Client struct {
	opts  Options
	log   *slog.Logger
	reg   *httpfilter.Registry
	stats *xdsStats

	// mu guards the state below: the streams' goroutine handles responses under it, and so
	// do initial-fetch timers and SetStatic.
	mu      sync.Mutex
	static  *model.Bootstrap
	types   [numKinds]*typeState
	res     resources
	applied applied
	timers  map[watchKey]*time.Timer
	expired map[watchKey]bool
	closed  bool
	// rds decodes route configurations, reusing their unchanged virtual hosts.
	rds *decode.RouteCache
	// failed holds, per type, the last refused version of each resource.
	failed [numKinds]map[string]failure
	// warming are the listeners and clusters waiting for what they name.
	warming []string
	// first records, for listeners and clusters, that the first fetch is over: a response
	// came (accepted or not) or initial_fetch_timeout passed. initDone is closed once both
	// are and nothing they brought is warming.
	first      [numKinds]bool
	initDone   chan struct{}
	initClosed bool

	// kick wakes the stream to send subscription changes made outside a response.
	kick chan struct{}
}

// New returns a client that is not yet connected.
func New(opts Options) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = httpfilter.Default
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 500 * time.Millisecond
	}
	if opts.BackoffMax < opts.BackoffMin {
		opts.BackoffMax = max(30*time.Second, opts.BackoffMin)
	}
	if opts.Static == nil {
		opts.Static = &model.Bootstrap{}
	}
	c := &Client{
		opts: opts, log: opts.Logger, reg: opts.Registry, static: opts.Static,
		res:      newResources(),
		rds:      decode.NewRouteCache(),
		timers:   map[watchKey]*time.Timer{},
		expired:  map[watchKey]bool{},
		kick:     make(chan struct{}, 1),
		initDone: make(chan struct{}),
		stats:    newXDSStats(opts.Stats),
	}
	for k := range c.failed {
		c.failed[k] = map[string]failure{}
	}
	dyn := opts.Static.Dynamic
	for k := range c.types {
		c.types[k] = &typeState{kind: kind(k), versions: map[string]string{}}
	}
	c.types[kindLDS].wildcard = dyn == nil || dyn.LDS
	c.types[kindCDS].wildcard = dyn == nil || dyn.CDS
	return c
}

// Start puts the static configuration in force, with whatever it names over xDS left
// warming, and starts the clocks of the first fetch of listeners and clusters. It returns the
// error that made the configuration fail to apply.
func (c *Client) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.rebuildLocked("static configuration"); err != nil {
		return err
	}
	dyn := c.static.Dynamic
	for _, k := range []kind{kindLDS, kindCDS} {
		if !c.types[k].wildcard {
			c.first[k] = true // not subscribed: nothing to wait for
			continue
		}
		var d time.Duration
		if dyn != nil {
			d = dyn.LDSSource.InitialFetchTimeout
			if k == kindCDS {
				d = dyn.CDSSource.InitialFetchTimeout
			}
		}
		if d > 0 && c.timers[watchKey{k, ""}] == nil {
			c.timers[watchKey{k, ""}] = time.AfterFunc(d, func() { c.firstFetchTimedOut(k) })
		}
	}
	c.checkInitLocked()
	return nil
}

// Initialized is closed when the first fetch is over, as Envoy's initialization: the first
// listeners and clusters arrived and warmed (their route tables, endpoints and secrets came
// or timed out), or their initial_fetch_timeout passed. A server reports INITIALIZING until
// then. A timeout of 0 waits for ever.
func (c *Client) Initialized() <-chan struct{} { return c.initDone }

func (c *Client) firstFetchTimedOut(k kind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := watchKey{k, ""}
	if c.closed || c.timers[key] == nil {
		return
	}
	delete(c.timers, key)
	c.log.Warn("xds: initial fetch timed out; initializing without it", "type", k.String())
	c.first[k] = true
	c.checkInitLocked()
}

func (c *Client) checkInitLocked() {
	if c.initClosed || !c.first[kindLDS] || !c.first[kindCDS] || len(c.warming) > 0 {
		return
	}
	c.initClosed = true
	close(c.initDone)
	c.log.Info("xds: initialized")
}

// SetStatic replaces the static configuration (the bootstrap file was reloaded) and applies
// it merged with the dynamic resources. On error the previous configuration stays.
func (c *Client) SetStatic(b *model.Bootstrap) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.static
	c.static = b
	if err := c.rebuildLocked("static configuration"); err != nil {
		c.static = prev
		return err
	}
	c.wake()
	return nil
}

// Run keeps an ADS stream open until ctx is done, reconnecting with backoff when it fails.
// It returns nil when ctx is done.
func (c *Client) Run(ctx context.Context) error {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, c.opts.DialOptions...)
	conn, err := grpc.NewClient(c.opts.Target, opts...)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer c.stopTimers()
	defer c.stats.release()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	backoff := c.opts.BackoffMin
	for {
		got, err := c.runStream(ctx, ads)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			backoff = c.opts.BackoffMin
		}
		// Full jitter over [backoff/2, backoff): many data planes losing one server do not
		// come back in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("xds: stream ended; serving the last good configuration", "error", err, "retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.BackoffMax)
	}
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) stopTimers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for k, t := range c.timers {
		t.Stop()
		delete(c.timers, k)
	}
}

// runStream runs one ADS stream until it fails or ctx is done. got reports whether the
// server answered at all, which resets the backoff.
func (c *Client) runStream(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tr transport
	if c.opts.Delta {
		s, err := ads.DeltaAggregatedResources(sctx, grpc.WaitForReady(true))
		if err != nil {
			return false, err
		}
		tr = &deltaTransport{s: s, node: nodeOnce{node: c.opts.Node}}
	} else {
		s, err := ads.StreamAggregatedResources(sctx, grpc.WaitForReady(true))
		if err != nil {
			return false, err
		}
		tr = &sotwTransport{s: s, node: nodeOnce{node: c.opts.Node}}
	}

	c.stats.connected.Set(1)
	defer c.stats.connected.Set(0)
	updates := make(chan *update)
	recvErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			u, err := tr.recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case updates <- u:
			case <-sctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	c.mu.Lock()
	for _, ts := range c.types {
		ts.newStream()
	}
	err = c.sendSubscriptionsLocked(tr)
	c.mu.Unlock()
	if err != nil {
		return false, err
	}
	// A NACK of a response the server has already sent and had refused is held back for a
	// while: a state-of-the-world server answers a NACK by sending its current version again
	// at once, and the two would otherwise loop as fast as they can.
	var held *update
	var heldErr error
	holdTimer := time.NewTimer(0)
	<-holdTimer.C
	defer holdTimer.Stop()
	release := func() error {
		if held == nil {
			return nil
		}
		u := held
		held = nil
		holdTimer.Stop()
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := tr.ack(c.types[u.kind], u, heldErr); err != nil {
			return err
		}
		return c.sendSubscriptionsLocked(tr)
	}
	for {
		select {
		case u := <-updates:
			got = true
			if err := release(); err != nil {
				return got, err
			}
			delay, err := c.onUpdate(tr, u)
			if err != nil {
				return got, err
			}
			if delay > 0 {
				held, heldErr = u, c.types[u.kind].rejectedErr
				holdTimer.Reset(delay)
			}
		case <-holdTimer.C:
			if err := release(); err != nil {
				return got, err
			}
		case <-c.kick:
			c.mu.Lock()
			err := c.sendSubscriptionsLocked(tr)
			c.mu.Unlock()
			if err != nil {
				return got, err
			}
		case err := <-recvErr:
			return got, err
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// onUpdate handles one response: decode, apply, then ACK or NACK, then send the
// subscription changes it caused. A state-of-the-world response repeating a version already
// refused is refused again without decoding, and its NACK is to be sent after delay.
func (c *Client) onUpdate(tr transport, u *update) (delay time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.types[u.kind]
	ts.nonce = u.nonce
	if !c.first[u.kind] {
		// Accepted or not, the first fetch is over, as in Envoy: what was refused would
		// not come by waiting.
		c.first[u.kind] = true
		c.stopTimer(watchKey{u.kind, ""})
		defer c.checkInitLocked()
	}
	if !u.delta && ts.rejectedErr != nil && u.version == ts.rejectedVersion {
		ts.rejectedCount++
		return min(nackHoldMin<<min(ts.rejectedCount-1, 10), nackHoldMax), nil
	}
	herr := c.handleLocked(u)
	c.stats.count(u.kind, herr)
	if herr != nil {
		c.log.Error("xds: update rejected; keeping the last good configuration",
			"type", u.kind.String(), "version", u.version, "error", herr)
		ts.rejectedVersion, ts.rejectedErr, ts.rejectedCount = u.version, herr, 0
	} else {
		ts.version = u.version
		ts.rejectedVersion, ts.rejectedErr = "", nil
		c.log.Info("xds: update applied", "type", u.kind.String(), "version", u.version, "resources", len(u.resources), "removed", len(u.removed))
	}
	if err := tr.ack(ts, u, herr); err != nil {
		return 0, err
	}
	return 0, c.sendSubscriptionsLocked(tr)
}

// The hold on repeated NACKs grows from nackHoldMin to nackHoldMax.
const (
	nackHoldMin = 100 * time.Millisecond
	nackHoldMax = 10 * time.Second
)

func (c *Client) sendSubscriptionsLocked(tr transport) error {
	for _, k := range subscribeOrder {
		if err := tr.subscribe(c.types[k]); err != nil {
			return err
		}
	}
	return nil
}

// subscribeOrder is Envoy's: clusters before listeners, so that routes find their clusters.
var subscribeOrder = [...]kind{kindCDS, kindEDS, kindLDS, kindRDS, kindSDS}

// clone copies a node for a request, so the caller's value is never shared with gRPC.
func clone(n *corev3.Node) *corev3.Node {
	if n == nil {
		return nil
	}
	return proto.Clone(n).(*corev3.Node)
}
