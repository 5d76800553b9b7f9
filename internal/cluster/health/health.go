// Package health runs Envoy-style active health checks (HTTP, TCP, gRPC) against the
// hosts of one cluster and turns their results into healthy/unhealthy verdicts with
// Envoy's thresholds and intervals.
//
// Every host has its own goroutine: check, judge, sleep the interval that fits the host's
// state (no traffic yet, unhealthy, just changed), with jitter. Verdicts go back through
// the callbacks the cluster registers; this package knows nothing about load balancing.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Options are what a Checker needs besides its configuration.
type Options struct {
	// Cluster is the cluster name: the default authority of HTTP and gRPC checks, as Envoy.
	Cluster string
	// TLS, when set, is the cluster's upstream TLS; checks use it too.
	TLS    *tls.Config
	Scope  *stats.Scope // the cluster's, "cluster.<name>."
	Logger *slog.Logger
	// Used reports whether the cluster has carried traffic (no_traffic_interval otherwise).
	Used func() bool
}

// Hooks connect one host's verdicts to the cluster.
type Hooks struct {
	// SetFailed sets or clears the host's FAILED_ACTIVE_HC state; timeout says the failing
	// check timed out. It is called on every transition and on the first verdict.
	SetFailed func(failed, timeout bool)
	// Passed is called after every passing check (outlier detection may return the host).
	Passed func()
}

// Checker health-checks the hosts of one cluster.
type Checker struct {
	cfg   model.HealthCheck
	opts  Options
	probe prober

	attempt, success, failure, networkFailure *stats.Counter
	healthyGauge                              *stats.Gauge

	mu     sync.Mutex
	hosts  map[string]*hostCheck
	closed bool
	wg     sync.WaitGroup
}

// prober makes probes for addresses; a probe may keep a connection between checks.
type prober interface {
	newProbe(addr string) probe
	close()
}

type probe interface {
	check(ctx context.Context) error
	close()
}

// networkError marks a failure to reach the host (connect, reset, timeout), which Envoy
// counts as network_failure beside failure.
type networkError struct{ err error }

func (e *networkError) Error() string { return e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }

// New returns a checker for cfg. It checks nothing until hosts are added.
func New(cfg *model.HealthCheck, opts Options) (*Checker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Used == nil {
		opts.Used = func() bool { return true }
	}
	c := &Checker{cfg: *cfg, opts: opts, hosts: map[string]*hostCheck{}}
	switch {
	case cfg.Kind == model.HealthCheckHTTP && cfg.HTTP != nil:
		c.probe = newHTTPProber(cfg.HTTP, &opts, cfg.Timeout)
	case cfg.Kind == model.HealthCheckTCP && cfg.TCP != nil:
		c.probe = &tcpProber{cfg: cfg.TCP, tls: opts.TLS}
	case cfg.Kind == model.HealthCheckGRPC && cfg.GRPC != nil:
		c.probe = newGRPCProber(cfg.GRPC, &opts)
	default:
		return nil, fmt.Errorf("health check: kind %d without its settings", cfg.Kind)
	}
	sc := opts.Scope
	c.attempt = sc.Counter("health_check.attempt")
	c.success = sc.Counter("health_check.success")
	c.failure = sc.Counter("health_check.failure")
	c.networkFailure = sc.Counter("health_check.network_failure")
	c.healthyGauge = sc.Gauge("health_check.healthy")
	return c, nil
}

// hostCheck is one host's check loop and verdict state.
type hostCheck struct {
	c      *Checker
	addr   string
	hooks  Hooks
	probe  probe
	cancel context.CancelFunc
	first  chan struct{} // closed after the first verdict

	// Owned by the loop goroutine.
	healthy                bool
	checked                bool
	numHealthy, numFailing uint32
	edge                   bool // the last check changed the verdict
}

// Add starts checking the host key at addr ("ip:port"). The host counts as failed until
// its first check passes; the cluster marks it so before calling Add.
func (c *Checker) Add(key, addr string, hooks Hooks) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.hosts[key] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &hostCheck{c: c, addr: addr, hooks: hooks, probe: c.probe.newProbe(addr), cancel: cancel, first: make(chan struct{})}
	c.hosts[key] = h
	c.wg.Go(func() { h.run(ctx) })
}

// Remove stops checking the host key.
func (c *Checker) Remove(key string) {
	c.mu.Lock()
	h := c.hosts[key]
	delete(c.hosts, key)
	c.mu.Unlock()
	if h != nil {
		h.cancel()
	}
}

// WaitFirst waits until every host added so far has had its first verdict, or ctx ends.
// Envoy holds a cluster's initialization for its first round of checks the same way.
func (c *Checker) WaitFirst(ctx context.Context) error {
	c.mu.Lock()
	var firsts []chan struct{}
	for _, h := range c.hosts {
		firsts = append(firsts, h.first)
	}
	c.mu.Unlock()
	for _, f := range firsts {
		select {
		case <-f:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close stops every check and waits for the loops to end.
func (c *Checker) Close() {
	c.mu.Lock()
	c.closed = true
	hosts := c.hosts
	c.hosts = map[string]*hostCheck{}
	c.mu.Unlock()
	for _, h := range hosts {
		h.cancel()
	}
	c.wg.Wait()
	c.probe.close()
}

func (h *hostCheck) run(ctx context.Context) {
	defer h.probe.close()
	defer func() {
		if h.healthy {
			h.c.healthyGauge.Dec()
		}
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.checkOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		t.Reset(h.next())
	}
}

func (h *hostCheck) checkOnce(ctx context.Context) {
	c := h.c
	c.attempt.Inc()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	err := h.probe.check(cctx)
	timedOut := cctx.Err() == context.DeadlineExceeded
	cancel()
	if ctx.Err() != nil {
		return // removed or closed mid-check: no verdict
	}
	first := !h.checked
	h.checked = true
	h.edge = false
	if err == nil {
		c.success.Inc()
		h.numFailing = 0
		// A new host's first pass makes it healthy at once (Envoy trades a little safety
		// for faster startup); afterwards healthy_threshold passes in a row are needed.
		if !h.healthy {
			h.numHealthy++
			if first || h.numHealthy >= c.cfg.HealthyThreshold {
				h.healthy, h.edge = true, true
				c.healthyGauge.Inc()
				h.hooks.SetFailed(false, false)
			}
		}
		if h.hooks.Passed != nil {
			h.hooks.Passed()
		}
	} else {
		c.failure.Inc()
		var ne *networkError
		if timedOut || errors.As(err, &ne) {
			c.networkFailure.Inc()
		}
		h.numHealthy = 0
		if h.healthy {
			h.numFailing++
			if h.numFailing >= c.cfg.UnhealthyThreshold {
				h.healthy, h.edge = false, true
				c.healthyGauge.Dec()
				h.hooks.SetFailed(true, timedOut)
			}
		} else if first {
			h.hooks.SetFailed(true, timedOut) // no longer pending: failed
		}
		c.opts.Logger.Debug("health check failed", "host", h.addr, "error", err)
	}
	if first {
		close(h.first)
	}
}

// next is the wait before the next check, as Envoy chooses it.
func (h *hostCheck) next() time.Duration {
	cfg := &h.c.cfg
	var d time.Duration
	switch {
	case !h.c.opts.Used():
		d = cfg.NoTrafficInterval
	case !h.healthy && h.edge:
		d = cfg.UnhealthyEdgeInterval
	case !h.healthy:
		d = cfg.UnhealthyInterval
	case h.edge:
		d = cfg.HealthyEdgeInterval
	}
	if d <= 0 {
		d = cfg.Interval
	}
	if p := cfg.IntervalJitterPercent; p > 0 {
		if j := int64(d) * int64(p) / 100; j > 0 {
			d += time.Duration(rand.Int64N(j))
		}
	}
	if j := cfg.IntervalJitter; j > 0 {
		d += time.Duration(rand.Int64N(int64(j)))
	}
	return d
}
