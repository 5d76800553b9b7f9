package xdsresources

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const hcmTypeURL = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

// ads is the config source of every resource the controller serves: the data plane's one ADS
// stream, which keeps all types on one ordered channel.
func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// hcm moves an HTTP connection manager's inline route_config out to RDS, so that a route
// change is pushed as that one RouteConfiguration and the listener (whose update would make a
// data plane rebuild and drain it) stays as it was. A manager already using RDS or scoped
// routes is left alone.
func (g *generator) hcm(a *anypb.Any, listener, key string) (*anypb.Any, error) {
	h := &hcmv3.HttpConnectionManager{}
	if err := a.UnmarshalTo(h); err != nil {
		return nil, fmt.Errorf("typed_config: %w", err)
	}
	rc := h.GetRouteConfig()
	if rc == nil {
		return a, nil
	}
	if vhs := rc.GetVirtualHosts(); len(vhs) == 1 && strings.HasPrefix(vhs[0].GetName(), placeholderPrefix) {
		key := strings.TrimPrefix(vhs[0].GetName(), placeholderPrefix)
		hosts, ok := g.vhosts[key]
		if !ok {
			return nil, fmt.Errorf("route_config: virtual host placeholder %q without its virtual hosts", key)
		}
		// The messages are shared with the caller and with earlier outputs; the slice is not.
		rc.VirtualHosts = slices.Clone(hosts)
		g.used[key] = true
	}
	name := g.addRoute(rc, listener, key)
	h.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
		ConfigSource:    ads(),
		RouteConfigName: name,
	}}
	return marshalAny(h)
}

// addRoute records rc and returns the name it is served under. Route configuration names
// need not be unique inside a bootstrap (each is inline in its listener), but they are RDS
// keys: identical configurations under one name are served once, and a different one that
// reuses a name (or has none) gets a name derived from its listener and filter chain.
func (g *generator) addRoute(rc *routev3.RouteConfiguration, listener, key string) string {
	name := rc.GetName()
	if name == "" {
		name = listener
	}
	if !g.fits(name, rc) {
		base := listener + "/" + key
		name = base
		for n := 2; !g.fits(name, rc); n++ {
			name = base + "#" + strconv.Itoa(n)
		}
	}
	if _, ok := g.routes[name]; !ok {
		rc.Name = name
		g.routes[name] = rc
		g.routeOrder = append(g.routeOrder, name)
	}
	return name
}

// fits reports whether rc can be served as name: the name is free, or holds the same routes.
func (g *generator) fits(name string, rc *routev3.RouteConfiguration) bool {
	old, ok := g.routes[name]
	if !ok {
		return true
	}
	c := proto.Clone(rc).(*routev3.RouteConfiguration)
	c.Name = name
	return proto.Equal(old, c)
}

// marshalAny packs m deterministically: resource versions are hashes of the serialized
// resource, and a map serialized in random order would change the version of an unchanged
// resource and push it for nothing.
func marshalAny(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, err
	}
	return a, nil
}
