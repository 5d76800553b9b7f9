// Package cluster builds upstream clusters from the model, keeps their endpoint sets current
// (static, DNS) and picks an endpoint per request.
package cluster

// Cluster is one running upstream cluster.
type Cluster struct {
	Name string
}
