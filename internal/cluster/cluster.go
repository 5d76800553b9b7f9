// Package cluster builds upstream clusters from the model, keeps their endpoint sets current
// (static, DNS) and picks an endpoint per request.
package cluster

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster/health"
	"github.com/nuncio-gw/nuncio/internal/cluster/outlier"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// Defaults for zero model values, as Envoy has them.
const (
	defaultIdleTimeout    = time.Hour
	defaultMaxConnections = 1024
	defaultDNSRefreshRate = 5 * time.Second
)

// Cluster is one running upstream cluster: its immutable configuration and, behind an
// atomic pointer, its current endpoint set. EDS and DNS updates swap only that pointer; a
// changed configuration builds a new Cluster.
type Cluster struct {
	Name  string
	Model *model.Cluster

	set atomic.Pointer[endpointSet]

	log      *slog.Logger
	poolOpts upstream.PoolOptions // shared by every host's pool; Limit is cluster-wide
	lb       lbSettings
	breakers [2]*Breakers // by model.RoutingPriority
	scope    *stats.Scope // "cluster.<name>."
	resolver Resolver
	hc       *health.Checker   // nil without active health checks
	od       *outlier.Detector // nil without outlier detection
	used     atomic.Bool       // a request has been sent (health checks slow down until then)

	rebuildPending atomic.Bool // a healthChanged call is about to rebuild the endpoint set

	membershipTotal, membershipHealthy *stats.Gauge

	mu        sync.Mutex // serializes endpoint-set updates (DNS refreshes, SetEndpoints)
	closed    bool
	endpoints []model.LocalityEndpoints // the last endpoints applied, for EDS carry-over
	dns       *dnsState                 // nil unless STRICT_DNS or LOGICAL_DNS
	stop      context.CancelFunc
	done      chan struct{} // closed when the DNS refresh loop exits
}

// Host is one upstream endpoint of a cluster. Its fields are immutable; a changed weight or
// health builds a new Host that keeps the old one's pools.
type Host struct {
	// Address is "ip:port" (or "name:port" for a STATIC endpoint given by name).
	Address string
	// Addr is the parsed address when it is an IP literal.
	Addr   netip.AddrPort
	Weight uint32 // at least 1
	// Hostname is the endpoint's hostname (for auto_host_rewrite), or the DNS name it
	// was resolved from.
	Hostname string
	Priority uint32
	Locality Locality
	// LocalityWeight is the load_balancing_weight of the host's locality (at least 1).
	LocalityWeight uint32
	// Healthy is false for endpoints their source (EDS) reported unhealthy. Active health
	// checks and outlier detection keep their verdicts in HealthFlags.
	Healthy bool

	// Pool carries requests in the cluster's protocol. For clusters using the downstream
	// protocol it is the HTTP/1.1 pool and H2 the HTTP/2 one; otherwise H2 is nil.
	Pool *upstream.Pool
	H2   *upstream.Pool

	key    string // identity across endpoint-set updates
	active atomic.Int64
	// st is the host's health and outlier state; it follows the host across endpoint-set
	// updates that keep its key, like its pools.
	st *hostState
}

// Locality is where a host runs.
type Locality struct {
	Region, Zone, SubZone string
}

// PoolFor returns the pool for a request that arrived over HTTP/2 (downstreamH2) or not.
func (h *Host) PoolFor(downstreamH2 bool) *upstream.Pool {
	if downstreamH2 && h.H2 != nil {
		return h.H2
	}
	return h.Pool
}

// Begin counts a request started on h (for least-request balancing and stats); call End
// when it finishes.
func (h *Host) Begin() {
	h.active.Add(1)
	if st := h.st; st != nil && !st.used.Load() {
		st.used.Store(true)
	}
}

// End counts a request on h finished.
func (h *Host) End() { h.active.Add(-1) }

// ActiveRequests is the number of requests in flight to h.
func (h *Host) ActiveRequests() int64 { return h.active.Load() }

// Pick returns the host for the next request, or nil when the cluster has no healthy host
// (the router answers 503 with flag UH). Requests go to the lowest priority level that has
// a healthy host. rnd is a random number from the caller, used by the random and
// least-request policies. Pick does not allocate and takes no lock unless the weighted
// schedule was too large to precompute.
//
// Deprecated: use Choose.
func (c *Cluster) Pick(rnd uint64) *Host {
	return c.Choose(&LBContext{Rnd: rnd})
}

// Hosts returns the current hosts, ordered by priority. The slice must not be modified.
func (c *Cluster) Hosts() []*Host {
	if s := c.set.Load(); s != nil {
		return s.hosts
	}
	return nil
}

// newCluster builds a cluster without endpoints; the caller sets them.
func newCluster(m *model.Cluster, opts *Options) (*Cluster, error) {
	tlsCfg, err := upstream.BuildTLS(m.TLS)
	if err != nil {
		return nil, err
	}
	po := upstream.PoolOptions{
		ConnectTimeout:           m.ConnectTimeout,
		IdleTimeout:              cmp.Or(m.IdleTimeout, defaultIdleTimeout),
		MaxRequestsPerConnection: m.MaxRequestsPerConnection,
		Limit:                    upstream.NewConnLimit(cmp.Or(m.MaxConnections, defaultMaxConnections)),
		TLS:                      tlsCfg,
		KeepAlive:                opts.KeepAlive,
		HTTP2:                    m.HTTP2,
	}
	if m.Protocol == model.UpstreamHTTP2 {
		po.Protocol = upstream.HTTP2
	}
	c := &Cluster{
		Name:     m.Name,
		Model:    m,
		log:      opts.Logger.With("cluster", m.Name),
		poolOpts: po,
		resolver: opts.Resolver,
		lb:       newLBSettings(m),
	}
	st := opts.Stats
	if st == nil {
		st = stats.Default
	}
	c.scope = st.Scope("cluster." + m.Name)
	c.poolOpts.Stats = upstream.NewConnStats(c.scope)
	var def, high *model.Thresholds
	if cb := m.CircuitBreakers; cb != nil {
		def, high = &cb.Default, &cb.High
	}
	c.breakers[model.PriorityDefault] = newBreakers(def, c.scope)
	c.breakers[model.PriorityHigh] = newBreakers(high, c.scope)
	c.membershipTotal = c.scope.Gauge("membership_total")
	c.membershipHealthy = c.scope.Gauge("membership_healthy")
	if m.HealthCheck != nil {
		c.hc, err = health.New(m.HealthCheck, health.Options{
			Cluster: m.Name, TLS: tlsCfg, Scope: c.scope, Logger: c.log, Used: c.used.Load,
		})
		if err != nil {
			c.scope.Release()
			return nil, err
		}
	}
	if m.OutlierDetection != nil {
		c.od = outlier.New(m.OutlierDetection, c.scope, c.healthChanged, outlier.Options{})
	}
	c.set.Store(&endpointSet{})
	return c, nil
}

// hostSpec is a host to be, before pools are attached.
type hostSpec struct {
	key       string
	address   string
	addr      netip.AddrPort
	weight    uint32
	hostname  string
	priority  uint32
	locality  Locality
	locWeight uint32
	healthy   bool
}

// staticSpecs lists the hosts of endpoints given as addresses (STATIC and EDS).
func staticSpecs(ls []model.LocalityEndpoints) []hostSpec {
	var out []hostSpec
	for _, l := range ls {
		for _, e := range l.Endpoints {
			s := hostSpec{
				weight:    e.Weight,
				hostname:  e.Hostname,
				priority:  l.Priority,
				locality:  Locality{l.Region, l.Zone, l.SubZone},
				locWeight: max(l.Weight, 1),
				healthy:   !e.Unhealthy,
			}
			port := strconv.FormatUint(uint64(e.Address.Port), 10)
			if ip, err := netip.ParseAddr(e.Address.Host); err == nil {
				s.addr = netip.AddrPortFrom(ip.Unmap(), uint16(e.Address.Port))
				s.address = s.addr.String()
			} else {
				s.address = e.Address.Host + ":" + port
			}
			s.key = s.address
			out = append(out, s)
		}
	}
	return out
}

// setHosts publishes a new endpoint set built from specs, reusing the Host (or at least the
// pools) of every spec whose key is unchanged, and drains the pools of hosts that went away.
// Called with c.mu held.
func (c *Cluster) setHostsLocked(specs []hostSpec) {
	old := c.set.Load()
	byKey := make(map[string]*Host, len(old.hosts))
	for _, h := range old.hosts {
		if _, dup := byKey[h.key]; !dup {
			byKey[h.key] = h
		}
	}
	hosts := make([]*Host, 0, len(specs))
	kept := make(map[*upstream.Pool]bool, len(specs))
	for _, s := range specs {
		h := byKey[s.key]
		switch {
		case h != nil && h.matches(s):
			delete(byKey, s.key)
		case h != nil:
			delete(byKey, s.key)
			h = c.newHost(s, h)
		default:
			h = c.newHost(s, nil)
		}
		kept[h.Pool] = true
		hosts = append(hosts, h)
	}
	slices.SortStableFunc(hosts, func(a, b *Host) int { return cmp.Compare(a.Priority, b.Priority) })
	c.publishLocked(hosts)
	for _, h := range old.hosts {
		if !kept[h.Pool] {
			kept[h.Pool] = true // close each pool once, even for duplicate hosts
			h.closePools()
			c.dropHostStateLocked(h.key, h.st)
		}
	}
}

func (h *Host) matches(s hostSpec) bool {
	return h.Address == s.address && h.Weight == max(s.weight, 1) && h.Hostname == s.hostname &&
		h.Priority == s.priority && h.Locality == s.locality && h.Healthy == s.healthy &&
		h.LocalityWeight == max(s.locWeight, 1)
}

// newHost builds a host for s, taking over prev's pools when given (pointing them at the
// new address, for LOGICAL_DNS).
func (c *Cluster) newHost(s hostSpec, prev *Host) *Host {
	h := &Host{
		Address:        s.address,
		Addr:           s.addr,
		Weight:         max(s.weight, 1),
		Hostname:       s.hostname,
		Priority:       s.priority,
		Locality:       s.locality,
		LocalityWeight: max(s.locWeight, 1),
		Healthy:        s.healthy,
		key:            s.key,
	}
	if prev != nil {
		h.st = prev.st
		if c.hc != nil && h.st.addr != s.address {
			// LOGICAL_DNS moved the host: check the new address.
			c.hc.Remove(s.key)
			h.st.addr = s.address
			c.addHealthCheckLocked(s.key, h.st)
		}
		h.Pool, h.H2 = prev.Pool, prev.H2
		h.Pool.SetAddr(s.address)
		if h.H2 != nil {
			h.H2.SetAddr(s.address)
		}
		return h
	}
	h.st = c.newHostStateLocked(s.key, s.address)
	h.Pool = upstream.NewPool(s.address, c.poolOpts)
	if c.Model.Protocol == model.UpstreamUseDownstream {
		o := c.poolOpts
		o.Protocol = upstream.HTTP2
		h.H2 = upstream.NewPool(s.address, o)
	}
	return h
}

func (h *Host) closePools() {
	h.Pool.Close()
	if h.H2 != nil {
		h.H2.Close()
	}
}

// setEndpoints replaces the endpoint set of a STATIC or EDS cluster.
func (c *Cluster) setEndpoints(ls []model.LocalityEndpoints) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("cluster %q: closed", c.Name)
	}
	c.endpoints = ls
	c.setHostsLocked(staticSpecs(ls))
	return nil
}

// close stops DNS refreshes and drains every host's pools.
func (c *Cluster) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	stop, done := c.stop, c.done
	c.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if c.hc != nil {
		c.hc.Close()
	}
	if c.od != nil {
		c.od.Close()
	}
	for _, h := range c.set.Load().hosts {
		h.closePools()
	}
	c.membershipTotal.Set(0)
	c.membershipHealthy.Set(0)
	c.scope.Release()
}
