package model

import "time"

// DynamicResources is the bootstrap's dynamic_resources: where listeners, clusters and the
// resources they refer to (route tables, endpoints, secrets) come from over xDS.
type DynamicResources struct {
	// ADSCluster is the static cluster the ADS stream is opened to ("" when Target was
	// given directly, as with `nuncio run --xds`).
	ADSCluster string
	// Target is the management server's address as gRPC dials it (host:port).
	Target string
	// Delta selects the incremental protocol (api_type DELTA_GRPC).
	Delta bool
	// LDS and CDS subscribe to every listener and cluster the server has (lds_config and
	// cds_config set).
	LDS, CDS bool
	// LDSSource and CDSSource hold the initial fetch timeouts of those subscriptions.
	LDSSource, CDSSource ConfigSource
}

// ConfigSource is where one xDS resource comes from. Only the ADS stream is supported, so
// the source carries no address: just how long a first fetch may take.
type ConfigSource struct {
	// InitialFetchTimeout is how long a resource that others wait for (a listener's route
	// table, a cluster's endpoints) may be missing before they go ahead without it; 0 waits
	// for ever. Envoy's default is 15 s.
	InitialFetchTimeout time.Duration
}

// RDS names a route table delivered on its own (the HCM's rds field).
type RDS struct {
	RouteConfigName string
	ConfigSource    ConfigSource
}

// EDSConfig is an EDS cluster's eds_cluster_config.
type EDSConfig struct {
	// ServiceName is the ClusterLoadAssignment to subscribe to; the cluster's name when
	// unset.
	ServiceName  string
	ConfigSource ConfigSource
}

// SecretRef names a secret delivered by SDS.
type SecretRef struct {
	Name         string
	ConfigSource ConfigSource
}

// Secret is one SDS resource: a certificate with its key, or a validation context.
type Secret struct {
	Name        string
	Certificate *Certificate
	Validation  *ValidationContext
	Source      any // original resource, for /config_dump
}

// ValidationContext is how a peer's certificate is verified.
type ValidationContext struct {
	TrustedCAPEM   []byte
	SystemRoots    bool
	MatchSANs      []StringMatcher
	MatchTypedSANs []SANMatcher
}
