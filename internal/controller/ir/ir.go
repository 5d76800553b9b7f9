// Package ir is the controller's intermediate representation: what a front end (the simple
// config, Kubernetes Ingress, later the Gateway API) decided the gateway should do, in plain
// values that serialise to YAML and validate on their own, before any Envoy message is built.
// Every front end translates to this one shape and package xdsgen encodes it, so that a policy
// is one IR type and one encoder file however many front ends offer it, each part can be
// tested alone, and `nuncio translate` can show users what their config means without xDS.
package ir

import (
	"cmp"
	"slices"
	"time"
)

// Config is everything the gateway serves.
type Config struct {
	// Listeners are the addresses the gateway accepts connections on, each with its filter
	// chains and, for HTTP, its virtual hosts.
	Listeners []*Listener `json:"listeners,omitempty"`
	Clusters  []*Cluster  `json:"clusters,omitempty"`
	// Secrets are certificates and CA bundles sent to the data plane (over SDS) and named by
	// listeners' and clusters' TLS settings.
	Secrets []*Secret `json:"secrets,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1.5s".
type Duration struct{ time.Duration }

// NewDuration returns a pointer to d as a Duration.
func NewDuration(d time.Duration) *Duration { return &Duration{d} }

// MarshalJSON writes the duration as Go formats it.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return errDuration
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Sort orders the clusters and secrets by name, so that the output does not depend on the
// order objects were listed in. Listeners, virtual hosts and routes keep their order, which
// the front end chose.
func (c *Config) Sort() {
	slices.SortFunc(c.Clusters, func(a, b *Cluster) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Secrets, func(a, b *Secret) int { return cmp.Compare(a.Name, b.Name) })
}

// Cluster returns the cluster named name, or nil.
func (c *Config) Cluster(name string) *Cluster {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl
		}
	}
	return nil
}

// Listener returns the listener named name, or nil.
func (c *Config) Listener(name string) *Listener {
	for _, l := range c.Listeners {
		if l.Name == name {
			return l
		}
	}
	return nil
}
