package simple

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/controller/ir"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
)

// Options control a translation.
type Options struct {
	// BaseDir is the directory that relative file paths in the config (certificates, keys, CAs)
	// are relative to: normally the config file's directory. Empty leaves them as written, so
	// that Envoy resolves them against its working directory.
	BaseDir string
}

// Translate validates cfg and translates it into an Envoy bootstrap with static listeners,
// clusters and, if configured, the admin listener. Relative file paths are left as written; use
// TranslateFile or Options.Translate to resolve them.
func Translate(cfg *v1alpha1.Config) (*bootstrapv3.Bootstrap, error) {
	return Options{}.Translate(cfg)
}

// TranslateFile parses the config file at path and translates it, resolving relative file paths
// against the file's directory.
func TranslateFile(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	return Options{BaseDir: dir}.Translate(cfg)
}

// Translate validates cfg and translates it with these options: to the IR (ToIR), encoded by
// xdsgen, as a bootstrap whose listeners carry their route tables and whose clusters carry
// their endpoints. The output depends only on cfg and the options: maps are visited in
// sorted order, lists (listeners and clusters included) in config order.
func (o Options) Translate(cfg *v1alpha1.Config) (*bootstrapv3.Bootstrap, error) {
	c, err := o.ToIR(cfg)
	if err != nil {
		return nil, err
	}
	r, err := xdsgen.ToXDS(c)
	if err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	b := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{}}
	if cfg.Admin != nil {
		host, port := hostPort(cfg.Admin.Address)
		b.Admin = &bootstrapv3.Admin{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}}}
	}
	// The encoder sorts by name; the bootstrap keeps the config's order.
	listeners := make(map[string]*listenerv3.Listener, len(r.Listeners))
	for _, l := range r.Listeners {
		listeners[l.GetName()] = l
	}
	for _, l := range c.Listeners {
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, listeners[l.Name])
	}
	clusters := make(map[string]*clusterv3.Cluster, len(r.Clusters))
	for _, cl := range r.Clusters {
		clusters[cl.GetName()] = cl
	}
	for _, cl := range c.Clusters {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, clusters[cl.Name])
	}
	return b, nil
}

// ToIR validates cfg and translates it into the controller's IR: a listener per listener
// with its routes grouped in virtual hosts, a static or DNS cluster per backend.
func (o Options) ToIR(cfg *v1alpha1.Config) (*ir.Config, error) {
	if err := cfg.Validate(); err != nil {
		return nil, problems(unjoin(err))
	}
	t := &translator{opts: o}
	c := &ir.Config{}
	for i := range cfg.Listeners {
		c.Listeners = append(c.Listeners, t.listener(&cfg.Listeners[i]))
	}
	for i := range cfg.Backends {
		c.Clusters = append(c.Clusters, t.cluster(&cfg.Backends[i]))
	}
	return c, nil
}

type translator struct {
	opts Options
}

// file resolves a path from the config against BaseDir.
func (t *translator) file(p string) string {
	if p != "" && t.opts.BaseDir != "" && !filepath.IsAbs(p) {
		return filepath.Join(t.opts.BaseDir, p)
	}
	return p
}

// hostPort splits a validated host:port. IPv6 hosts lose their brackets, as Envoy wants.
func hostPort(hostport string) (string, uint32) {
	host, port, _ := net.SplitHostPort(hostport)
	n, _ := strconv.ParseUint(port, 10, 16)
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	return host, uint32(n)
}

func duration(d *v1alpha1.Duration) *ir.Duration {
	if d == nil {
		return nil
	}
	return &ir.Duration{Duration: d.Duration}
}
