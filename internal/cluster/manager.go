package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Options configure a Manager. The zero value is usable.
type Options struct {
	Logger *slog.Logger // nil discards
	// Resolver resolves STRICT_DNS and LOGICAL_DNS endpoints (nil = net.DefaultResolver).
	Resolver Resolver
	// DNSTimeout bounds one lookup (0 = 5s).
	DNSTimeout time.Duration
	// DNSWarmTimeout bounds how long Apply waits for the first resolution of new DNS
	// clusters, so they serve requests as soon as they are visible. A cluster not resolved
	// by then is published without hosts and keeps resolving in the background (0 = 5s).
	DNSWarmTimeout time.Duration
	// KeepAlive is the TCP keep-alive idle time of upstream connections (0 = the
	// upstream package's default, negative disables).
	KeepAlive time.Duration
	// HealthWarmTimeout bounds how long Apply waits for the first round of active health
	// checks of new clusters; hosts still unchecked stay failed until their check passes
	// (0 = 5s).
	HealthWarmTimeout time.Duration
	// Stats receives the clusters' stats under "cluster.<name>." (nil = stats.Default).
	Stats *stats.Store
}

// Manager owns the running clusters and the Refs that route tables hold. All methods are
// safe for concurrent use.
type Manager struct {
	opts Options

	applyMu sync.Mutex // serializes Apply, SetEndpoints and Close

	mu       sync.Mutex
	refs     map[string]*Ref
	clusters map[string]*Cluster
	closed   bool
}

// NewManager returns a manager with no clusters.
func NewManager(opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Stats == nil {
		opts.Stats = stats.Default
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	opts.DNSTimeout = cmp.Or(opts.DNSTimeout, 5*time.Second)
	opts.DNSWarmTimeout = cmp.Or(opts.DNSWarmTimeout, 5*time.Second)
	opts.HealthWarmTimeout = cmp.Or(opts.HealthWarmTimeout, 5*time.Second)
	return &Manager{opts: opts, refs: map[string]*Ref{}, clusters: map[string]*Cluster{}}
}

// Ref returns the slot for the cluster called name, creating it (empty) if needed. Route
// tables call it while compiling; the slot is filled whenever a cluster of that name exists.
// Slots are never dropped, so a route compiled before its cluster arrives still finds it.
func (m *Manager) Ref(name string) *Ref {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.refLocked(name)
}

func (m *Manager) refLocked(name string) *Ref {
	r := m.refs[name]
	if r == nil {
		r = NewRef(name)
		r.store = m.opts.Stats
		if c := m.clusters[name]; c != nil {
			r.Store(c)
		}
		m.refs[name] = r
	}
	return r
}

// Apply makes cs the complete set of clusters (CDS state of the world). A cluster whose
// model is unchanged (ignoring Source) is kept as it is, with its pools, DNS state and the
// Model it was built from; new and changed ones are built (new DNS clusters resolved first, within
// DNSWarmTimeout); removed and replaced ones are unpublished and drained. If any cluster
// fails to build, nothing changes and the error names it.
func (m *Manager) Apply(cs []*model.Cluster) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()

	seen := make(map[string]bool, len(cs))
	for i, mc := range cs {
		switch {
		case mc == nil:
			return fmt.Errorf("cluster: clusters[%d] is nil", i)
		case mc.Name == "":
			return fmt.Errorf("cluster: clusters[%d]: empty name", i)
		case seen[mc.Name]:
			return fmt.Errorf("cluster %q: duplicate name", mc.Name)
		}
		seen[mc.Name] = true
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errors.New("cluster: manager closed")
	}
	old := m.clusters
	m.mu.Unlock()

	next := make(map[string]*Cluster, len(cs))
	var built []*Cluster
	for _, mc := range cs {
		prev := old[mc.Name]
		if prev != nil && sameModel(prev.Model, mc) {
			next[mc.Name] = prev
			continue
		}
		c, err := m.build(mc, prev)
		if err != nil {
			for _, b := range built {
				b.close()
			}
			return fmt.Errorf("cluster %q: %w", mc.Name, err)
		}
		built = append(built, c)
		next[mc.Name] = c
	}
	m.warm(built)

	var retired []*Cluster
	m.mu.Lock()
	for name, c := range next {
		m.refLocked(name).Store(c)
	}
	for name, c := range old {
		if next[name] != c {
			retired = append(retired, c)
			if next[name] == nil {
				if r := m.refs[name]; r != nil {
					r.Store(nil)
					r.releaseStats()
				}
			}
		}
	}
	m.clusters = next
	m.mu.Unlock()

	for _, c := range built {
		m.startDNS(c)
		if c.od != nil {
			c.od.Start()
		}
	}
	// Requests that loaded a retired cluster before the swap finish on its pools: Close
	// drains them rather than cutting connections in use.
	for _, c := range retired {
		c.close()
	}
	return nil
}

// sameModel compares two cluster models, ignoring Source (the original resource, which
// changes identity on every update without changing meaning).
func sameModel(a, b *model.Cluster) bool {
	x, y := *a, *b
	x.Source, y.Source = nil, nil
	return reflect.DeepEqual(x, y)
}

// build creates a cluster for mc with its initial endpoints. prev, the cluster it replaces
// if any, seeds EDS endpoints and DNS resolutions so the replacement does not start empty.
func (m *Manager) build(mc *model.Cluster, prev *Cluster) (*Cluster, error) {
	c, err := newCluster(mc, &m.opts)
	if err != nil {
		return nil, err
	}
	switch mc.Type {
	case model.ClusterStatic:
		c.setEndpoints(mc.Localities)
	case model.ClusterEDS:
		ls := mc.Localities
		if prev != nil && prev.Model.Type == model.ClusterEDS {
			prev.mu.Lock()
			ls = prev.endpoints
			prev.mu.Unlock()
		}
		c.setEndpoints(ls)
	case model.ClusterStrictDNS, model.ClusterLogicalDNS:
		c.dns = newDNSState(mc)
		if prev != nil && prev.dns != nil {
			prev.mu.Lock()
			if c.dns.sameTargets(prev.dns) {
				for i := range c.dns.targets {
					c.dns.targets[i].addrs = prev.dns.targets[i].addrs
				}
			}
			prev.mu.Unlock()
		}
		c.mu.Lock()
		c.setHostsLocked(c.dns.specs())
		c.mu.Unlock()
	default:
		return nil, fmt.Errorf("unsupported cluster type %d", mc.Type)
	}
	return c, nil
}

// warm runs the first resolution of DNS clusters that have none yet, concurrently.
func (m *Manager) warm(cs []*Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.DNSWarmTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range cs {
		if c.dns == nil || len(c.Hosts()) > 0 {
			continue
		}
		wg.Go(func() { c.refreshDNS(ctx, m.opts.DNSTimeout) })
	}
	wg.Wait()
	// Then the first round of health checks, as Envoy's cluster initialization waits for
	// it: hosts are published with verdicts, not all pending.
	hctx, hcancel := context.WithTimeout(context.Background(), m.opts.HealthWarmTimeout)
	defer hcancel()
	for _, c := range cs {
		wg.Go(func() { c.waitHealthChecks(hctx) })
	}
	wg.Wait()
}

func (m *Manager) startDNS(c *Cluster) {
	if c.dns == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	c.stop, c.done = cancel, make(chan struct{})
	c.mu.Unlock()
	rate := cmp.Or(c.Model.DNSRefreshRate, defaultDNSRefreshRate)
	go c.runDNS(ctx, rate, m.opts.DNSTimeout)
}

// SetEndpoints replaces the endpoints of a STATIC or EDS cluster (an EDS update). Hosts
// whose address is unchanged are kept with their pools; the cluster itself is not rebuilt.
func (m *Manager) SetEndpoints(cluster string, ls []model.LocalityEndpoints) error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	c := m.clusters[cluster]
	m.mu.Unlock()
	if c == nil {
		return fmt.Errorf("cluster %q: not found", cluster)
	}
	if c.dns != nil {
		return fmt.Errorf("cluster %q: endpoints of a DNS cluster come from DNS", cluster)
	}
	return c.setEndpoints(ls)
}

// Clusters returns the running clusters sorted by name.
func (m *Manager) Clusters() []*Cluster {
	m.mu.Lock()
	out := make([]*Cluster, 0, len(m.clusters))
	for _, c := range m.clusters {
		out = append(out, c)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b *Cluster) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Close unpublishes every cluster, stops DNS refreshes and drains all pools. Refs stay
// valid and empty.
func (m *Manager) Close() {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	cs := m.clusters
	m.clusters = map[string]*Cluster{}
	for _, r := range m.refs {
		r.Store(nil)
		r.releaseStats()
	}
	m.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}
