// Package xdsgen encodes the controller's IR (package ir) as Envoy xDS resources: the one
// encoder behind every front end (the simple config, Kubernetes Ingress). The core shapes
// have a file each (listener.go, route.go, cluster.go, tls.go); every policy has its own file
// that registers a feature (feature.go) with the hooks it needs: HTTP filters for a
// connection manager, a patch of each route or route action, a patch of each cluster.
package xdsgen

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// ToXDS validates an IR config and encodes it as the xDS resources every data plane is sent:
// its listeners (with their route tables inline or as RDS resources), its clusters (with
// their endpoints inline or as EDS ClusterLoadAssignments) and its secrets (SDS). Each list is
// sorted by name.
func ToXDS(c *ir.Config) (xdsresources.Resources, error) {
	return new(Encoder).ToXDS(c)
}

// Encoder is ToXDS for successive configs of one controller. It keeps the resources it built
// per virtual host, cluster and secret with the IR they came from, and reuses them where the
// IR is unchanged: their messages then stay the same, so validation skips them (see
// xdsresources.Generator.Validate) and the xDS server neither hashes nor pushes them again. A
// cluster's endpoints are compared apart from the rest of it, so an endpoint change replaces
// the ClusterLoadAssignment only. It is not safe for concurrent use.
type Encoder struct {
	hosts    map[hostKey]encodedHost
	clusters map[string]*encodedCluster
	secrets  map[string]*encodedSecret
	valid    xdsresources.Generator
}

// hostKey names a virtual host across listeners. Whether the listener terminates TLS is part
// of it, since HTTPSRedirect routes encode differently on plain listeners.
type hostKey struct {
	listener, host string
	tls            bool
}

type encodedHost struct {
	in  *ir.VirtualHost
	out *routev3.VirtualHost
}

type encodedCluster struct {
	in      *ir.Cluster
	cluster *clusterv3.Cluster
	cla     *endpointv3.ClusterLoadAssignment
}

type encodedSecret struct {
	in  *ir.Secret
	out *tlsv3.Secret
}

// ToXDS is the package's ToXDS, reusing the previous call's resources where the IR is the same.
func (e *Encoder) ToXDS(c *ir.Config) (xdsresources.Resources, error) {
	if err := c.Validate(); err != nil {
		return xdsresources.Resources{}, err
	}
	hosts := make(map[hostKey]encodedHost, len(e.hosts))
	// Listeners often share their virtual hosts (Ingress serves each on both), and so did the
	// previous config's: same is the previous host each one was found equal to, so that it is
	// compared once.
	same := map[*ir.VirtualHost]*ir.VirtualHost{}
	host := func(l *ir.Listener, vh *ir.VirtualHost) *routev3.VirtualHost {
		k := hostKey{listener: l.Name, host: vh.Name, tls: l.TLS()}
		h, ok := e.hosts[k]
		switch {
		case ok && same[vh] == h.in:
		case ok && reflect.DeepEqual(h.in, vh):
			same[vh] = h.in
		default:
			h = encodedHost{in: vh, out: virtualHost(vh, k.tls)}
		}
		hosts[k] = h
		return h.out
	}
	var r xdsresources.Resources
	for _, l := range c.Listeners {
		out, rc := listener(l, host)
		r.Listeners = append(r.Listeners, out)
		if rc != nil {
			r.Routes = append(r.Routes, rc)
		}
	}
	clusters := make(map[string]*encodedCluster, len(c.Clusters))
	for _, cl := range c.Clusters {
		prev := e.clusters[cl.Name]
		sameRest := prev != nil && sameExceptEndpoints(prev.in, cl)
		out := &encodedCluster{in: cl}
		switch {
		case sameRest && reflect.DeepEqual(prev.in.Localities, cl.Localities):
			out.cluster, out.cla = prev.cluster, prev.cla
		case sameRest && cl.Kind == ir.ClusterEDS:
			// Only the endpoints changed, and they are not part of an EDS cluster.
			_, out.cla = cluster(cl)
			out.cluster = prev.cluster
		default:
			out.cluster, out.cla = cluster(cl)
		}
		clusters[cl.Name] = out
		r.Clusters = append(r.Clusters, out.cluster)
		if out.cla != nil {
			r.Endpoints = append(r.Endpoints, out.cla)
		}
	}
	secrets := make(map[string]*encodedSecret, len(c.Secrets))
	for _, sec := range c.Secrets {
		out := e.secrets[sec.Name]
		if out == nil || !reflect.DeepEqual(out.in, sec) {
			out = &encodedSecret{in: sec, out: secret(sec)}
		}
		secrets[sec.Name] = out
		r.Secrets = append(r.Secrets, out.out)
	}
	sortResources(&r)
	if err := e.valid.Validate(r); err != nil {
		return xdsresources.Resources{}, err
	}
	e.hosts, e.clusters, e.secrets = hosts, clusters, secrets
	return r, nil
}

// sameExceptEndpoints reports whether two clusters differ at most in their endpoints.
func sameExceptEndpoints(a, b *ir.Cluster) bool {
	a2, b2 := *a, *b
	a2.Localities, b2.Localities = nil, nil
	return reflect.DeepEqual(&a2, &b2)
}

func sortResources(r *xdsresources.Resources) {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
	slices.SortFunc(r.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

// typed wraps a typed_config message. The messages are ours and well-formed, so marshalling
// cannot fail. The bytes are deterministic: the controller versions resources by hashing them,
// and a map (a JSON access log format, say) marshalled in random order would make an unchanged
// listener look changed and be pushed to every data plane.
func typed(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("xdsgen: marshal %T: %v", m, err))
	}
	return a
}

// ads is the config source of resources sent on the aggregated stream.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// optDur is d as a proto duration, nil when unset.
func optDur(d *ir.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	return durationpb.New(d.Duration)
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
