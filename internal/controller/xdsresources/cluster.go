package xdsresources

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// splitCluster returns a copy of c and, for a STATIC cluster, its endpoints as a separate
// ClusterLoadAssignment with the cluster turned into an EDS cluster. An endpoint change is
// then pushed as one ClusterLoadAssignment: the cluster itself, whose change makes a data plane
// rebuild its load balancer and connection pools, stays as it was.
//
// DNS clusters keep their load_assignment (it names hosts the data plane resolves), and so do
// EDS and custom clusters, which already say where their endpoints come from.
func splitCluster(in *clusterv3.Cluster) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	c := proto.Clone(in).(*clusterv3.Cluster)
	if c.GetClusterType() != nil || c.GetType() != clusterv3.Cluster_STATIC || c.GetLoadAssignment() == nil {
		return c, nil
	}
	cla := c.LoadAssignment
	c.LoadAssignment = nil
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()}
	// EDS resources are named by the cluster (no service_name is set), whatever the static
	// load_assignment called itself.
	cla.ClusterName = c.GetName()
	portableLocalities(cla)
	return c, cla
}

// portableLocalities makes endpoints that Envoy reads without locality information readable
// by gRPC's xDS client too, which rejects a locality without an ID and ignores localities of
// weight 0 (unset). An empty locality is what Envoy assumes when there is none, and Envoy
// reads locality weights only when locality-weighted load balancing is configured, so neither
// change alters what Envoy does. Weights are filled in only when no locality has one: a set
// that names some weights means the others to be unused.
func portableLocalities(cla *endpointv3.ClusterLoadAssignment) {
	weighted := false
	for _, le := range cla.GetEndpoints() {
		if le.GetLoadBalancingWeight() != nil {
			weighted = true
		}
	}
	for _, le := range cla.GetEndpoints() {
		if le.Locality == nil {
			le.Locality = &corev3.Locality{}
		}
		if !weighted {
			le.LoadBalancingWeight = wrapperspb.UInt32(1)
		}
	}
}
