package ir

// ClusterKind is how a cluster finds its endpoints.
type ClusterKind string

const (
	// ClusterEDS endpoints are IP addresses sent apart from the cluster (over EDS), so that
	// they change without the cluster.
	ClusterEDS ClusterKind = "EDS"
	// ClusterStatic endpoints are IP addresses that are part of the cluster.
	ClusterStatic ClusterKind = "Static"
	// ClusterDNS endpoints are host names (or IPs) the data plane resolves.
	ClusterDNS ClusterKind = "DNS"
)

// Cluster protocols.
const (
	ProtocolHTTP1 = "HTTP1"
	ProtocolHTTP2 = "HTTP2" // h2c, or h2 over TLS
	ProtocolAuto  = "AUTO"  // the downstream request's version
)

// Cluster is one upstream.
type Cluster struct {
	Name string      `json:"name"`
	Kind ClusterKind `json:"kind"`
	// Protocol is HTTP1, HTTP2 or AUTO.
	Protocol       string    `json:"protocol"`
	ConnectTimeout *Duration `json:"connectTimeout,omitempty"`
	// LB is an Envoy lb_policy name: ROUND_ROBIN (""), LEAST_REQUEST, RING_HASH, MAGLEV,
	// RANDOM.
	LB  string       `json:"lb,omitempty"`
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// HealthCheck, OutlierDetection and CircuitBreaker are the cluster's resilience
	// policies, each encoded by its own file in package xdsgen.
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	CircuitBreaker   *CircuitBreaker   `json:"circuitBreaker,omitempty"`
	// Localities hold the endpoints by zone and priority.
	Localities []Locality `json:"localities"`
}

// UpstreamTLS is TLS to the backend.
type UpstreamTLS struct {
	SNI string `json:"sni,omitempty"`
	// Verify checks the backend's certificate against CA (PEM), or the CA file CAFile, or
	// else the system roots.
	Verify bool   `json:"verify"`
	CA     string `json:"ca,omitempty"`
	CAFile string `json:"caFile,omitempty"`
	// VerifyName is the DNS name the certificate must carry when Verify is on.
	VerifyName string `json:"verifyName,omitempty"`
	// ClientSecret names the secret with a client certificate to present; CertFile and
	// KeyFile are one the data plane reads.
	ClientSecret string `json:"clientSecret,omitempty"`
	CertFile     string `json:"certFile,omitempty"`
	KeyFile      string `json:"keyFile,omitempty"`
	// Ciphers and the protocol range restrict the handshake ("" and nil: defaults).
	Ciphers    []string `json:"ciphers,omitempty"`
	MinVersion string   `json:"minVersion,omitempty"`
	MaxVersion string   `json:"maxVersion,omitempty"`
}

// HealthCheck probes endpoints actively. Exactly one of HTTP, TCP and GRPC is set.
type HealthCheck struct {
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout"`
	// NoTrafficInterval is the interval for a cluster without traffic (nil: the data
	// plane's default).
	NoTrafficInterval  *Duration        `json:"noTrafficInterval,omitempty"`
	HealthyThreshold   uint32           `json:"healthyThreshold"`
	UnhealthyThreshold uint32           `json:"unhealthyThreshold"`
	HTTP               *HTTPHealthCheck `json:"http,omitempty"`
	TCP                bool             `json:"tcp,omitempty"`
	GRPC               *GRPCHealthCheck `json:"grpc,omitempty"`
}

// HTTPHealthCheck is a GET of Path expecting one of ExpectedStatuses (none: 200).
type HTTPHealthCheck struct {
	Path             string `json:"path"`
	ExpectedStatuses []int  `json:"expectedStatuses,omitempty"`
}

// GRPCHealthCheck is grpc.health.v1 for Service.
type GRPCHealthCheck struct {
	Service string `json:"service,omitempty"`
}

// OutlierDetection ejects failing endpoints for a while (nil fields: defaults).
type OutlierDetection struct {
	Consecutive5xx     *uint32   `json:"consecutive5xx,omitempty"`
	Interval           *Duration `json:"interval,omitempty"`
	BaseEjectionTime   *Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent *uint32   `json:"maxEjectionPercent,omitempty"`
}

// CircuitBreaker caps what the gateway sends the cluster at once (nil fields: defaults).
type CircuitBreaker struct {
	MaxConnections     *uint32 `json:"maxConnections,omitempty"`
	MaxPendingRequests *uint32 `json:"maxPendingRequests,omitempty"`
	MaxRequests        *uint32 `json:"maxRequests,omitempty"`
	MaxRetries         *uint32 `json:"maxRetries,omitempty"`
}

// Locality is a group of endpoints of one zone and priority (0 is tried first).
type Locality struct {
	Zone     string `json:"zone,omitempty"`
	Priority uint32 `json:"priority,omitempty"`
	// Weight is the locality's load balancing weight (0: unset).
	Weight    uint32     `json:"weight,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is an address (a host name in DNS clusters) and port.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Weight is the endpoint's load balancing weight (0: unset).
	Weight uint32 `json:"weight,omitempty"`
}

// Secret is a certificate and key (PEM), or a CA bundle alone.
type Secret struct {
	Name string `json:"name"`
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	CA   string `json:"ca,omitempty"`
}
