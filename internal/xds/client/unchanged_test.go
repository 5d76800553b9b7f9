package client

import (
	"fmt"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// unchangedTestApplier records what reaches the data plane.
type unchangedTestApplier struct {
	applies   int
	endpoints []string
}

func (a *unchangedTestApplier) Apply(*model.Bootstrap) error                     { a.applies++; return nil }
func (a *unchangedTestApplier) UpdateRoutes(map[string]*model.RouteConfig) error { return nil }
func (a *unchangedTestApplier) SetEndpoints(cluster string, _ []model.LocalityEndpoints) error {
	a.endpoints = append(a.endpoints, cluster)
	return nil
}

func unchangedTestUpdate(t *testing.T, k kind, version string, msgs ...proto.Message) *update {
	t.Helper()
	u := &update{kind: k, version: version, nonce: version}
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		r, err := newResource(k, "", "", a)
		if err != nil {
			t.Fatal(err)
		}
		u.resources = append(u.resources, r)
	}
	return u
}

func unchangedTestCluster(name string) *clusterv3.Cluster {
	ads := &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
	return &clusterv3.Cluster{
		Name: name, ConnectTimeout: durationpb.New(time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads},
	}
}

func unchangedTestAssignment(cluster string, ips ...string) *endpointv3.ClusterLoadAssignment {
	le := &endpointv3.LocalityLbEndpoints{}
	for _, ip := range ips {
		le.LbEndpoints = append(le.LbEndpoints, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
			Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
				SocketAddress: &corev3.SocketAddress{Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80}}}}},
		}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{le}}
}

// A state-of-the-world response repeats every resource of its type. Those that are byte for
// byte the ones in force are neither decoded again nor applied: one endpoint added to one of
// three clusters reaches that cluster alone, and the others keep their decoded values.
func TestUnchangedResourcesAreNotDecodedAgain(t *testing.T) {
	a := &unchangedTestApplier{}
	c := New(Options{Applier: a})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	handle := func(u *update) {
		t.Helper()
		if err := c.handleLocked(u); err != nil {
			t.Fatal(err)
		}
	}
	var clusters []proto.Message
	for i := range 3 {
		clusters = append(clusters, unchangedTestCluster(fmt.Sprintf("c%d", i)))
	}
	handle(unchangedTestUpdate(t, kindCDS, "1", clusters...))
	handle(unchangedTestUpdate(t, kindEDS, "1", unchangedTestAssignment("c0", "10.0.0.1"), unchangedTestAssignment("c1", "10.0.1.1"), unchangedTestAssignment("c2", "10.0.2.1")))
	applies := a.applies
	before := c.res.endpoints
	a.endpoints = nil

	handle(unchangedTestUpdate(t, kindEDS, "2", unchangedTestAssignment("c0", "10.0.0.1"), unchangedTestAssignment("c1", "10.0.1.1", "10.0.1.2"), unchangedTestAssignment("c2", "10.0.2.1")))
	if fmt.Sprint(a.endpoints) != "[c1]" {
		t.Errorf("endpoints set for %v, want [c1]", a.endpoints)
	}
	if a.applies != applies {
		t.Errorf("an endpoint change applied the whole configuration")
	}
	for _, name := range []string{"c0", "c2"} {
		if &before[name][0] != &c.res.endpoints[name][0] {
			t.Errorf("%s: unchanged, but decoded again", name)
		}
	}
	if c.res.meta[kindEDS]["c0"].version != "1" || c.res.meta[kindEDS]["c1"].version != "2" {
		t.Errorf("versions: c0 %q, c1 %q; want 1 (unchanged since) and 2",
			c.res.meta[kindEDS]["c0"].version, c.res.meta[kindEDS]["c1"].version)
	}

	// The same set of clusters again changes nothing at all.
	a.endpoints = nil
	clustersBefore := c.res.clusters
	handle(unchangedTestUpdate(t, kindCDS, "2", clusters...))
	for name, cl := range clustersBefore {
		if c.res.clusters[name] != cl {
			t.Errorf("cluster %s: unchanged, but decoded again", name)
		}
	}
}
