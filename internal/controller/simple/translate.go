package simple

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
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

// Translate validates cfg and translates it with these options. The output depends only on cfg
// and the options: maps are visited in sorted order, lists in config order.
func (o Options) Translate(cfg *v1alpha1.Config) (*bootstrapv3.Bootstrap, error) {
	if err := cfg.Validate(); err != nil {
		return nil, problems(unjoin(err))
	}
	t := &translator{opts: o}
	b := &bootstrapv3.Bootstrap{StaticResources: &bootstrapv3.Bootstrap_StaticResources{}}
	if cfg.Admin != nil {
		b.Admin = &bootstrapv3.Admin{Address: socketAddress(cfg.Admin.Address)}
	}
	for i := range cfg.Listeners {
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, t.listener(&cfg.Listeners[i]))
	}
	for i := range cfg.Backends {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, t.cluster(&cfg.Backends[i]))
	}
	return b, nil
}

type translator struct {
	opts Options
}

// file resolves a path from the config against BaseDir.
func (t *translator) file(p string) *corev3.DataSource {
	if t.opts.BaseDir != "" && !filepath.IsAbs(p) {
		p = filepath.Join(t.opts.BaseDir, p)
	}
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p}}
}

// socketAddress converts a validated host:port. IPv6 hosts lose their brackets, as Envoy wants.
func socketAddress(hostport string) *corev3.Address {
	host, port, _ := net.SplitHostPort(hostport)
	n, _ := strconv.ParseUint(port, 10, 16)
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)},
	}}}
}

func duration(d *v1alpha1.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return durationpb.New(d.Duration)
}

func durationOr(d *v1alpha1.Duration, def time.Duration) *durationpb.Duration {
	if d == nil {
		return durationpb.New(def)
	}
	return durationpb.New(d.Duration)
}

// typed wraps a typed_config message. The messages are ours and well-formed, so marshalling
// cannot fail. The bytes are deterministic: the controller versions resources by hashing them,
// and a map (a JSON access log format, say) marshalled in random order would make an unchanged
// listener look changed and be pushed to every data plane.
func typed(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true})
	if err != nil {
		panic(fmt.Sprintf("simple: %v", err))
	}
	return a
}
