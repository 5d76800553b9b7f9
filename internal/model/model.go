// Package model holds the data plane's configuration as plain, validated Go values.
//
// Every config source (an Envoy bootstrap file, xDS resources, the simple Nuncio YAML via its
// translation to Envoy resources) is decoded into these types; snapshot.Build compiles them into
// the runtime. Values here are produced only by decoders that have already validated them, so
// the compiler may trust them. The package imports nothing from the rest of Nuncio and no
// protobuf types: filter configs arrive already compiled, as opaque values.
package model

import "time"

// Bootstrap is a whole static configuration: what one config file describes.
type Bootstrap struct {
	Admin     *Admin
	Listeners []*Listener
	Clusters  []*Cluster
	// Node identifies this proxy to management servers and in /server_info.
	Node Node
	// RouteConfigs are the route tables delivered by RDS that the listeners' connection
	// managers name (HTTPConnectionManager.RDS).
	RouteConfigs []*RouteConfig
	// Dynamic is the bootstrap's dynamic_resources; nil for a static configuration.
	Dynamic *DynamicResources
}

// Node is the bootstrap's node: the proxy's identity.
type Node struct {
	ID      string
	Cluster string
}

// Admin is the admin API's listener.
type Admin struct {
	Address SocketAddress
	// AccessLogPath is Envoy's admin.access_log_path; "" means no admin access log.
	AccessLogPath string
}

// SocketAddress is an IP literal (or a DNS name, for clusters) and a port.
type SocketAddress struct {
	Host string
	Port uint32
}

// Listener accepts downstream connections on one address.
type Listener struct {
	Name               string
	Address            SocketAddress
	FilterChains       []*FilterChain
	DefaultFilterChain *FilterChain
	// BufferLimitBytes is per_connection_buffer_limit_bytes: a soft limit on buffered data per
	// connection (Envoy's default 1 MiB).
	BufferLimitBytes uint32
	// ConnectionLimit caps concurrent downstream connections (0 = unlimited), from the
	// envoy.filters.network.connection_limit network filter.
	ConnectionLimit uint64
	// Source is the original resource, kept for /config_dump (a proto message or nil).
	Source any
}

// FilterChain is one way of handling a connection, selected by Match.
type FilterChain struct {
	Name  string
	Match FilterChainMatch
	TLS   *DownstreamTLS // nil for plaintext
	HCM   *HTTPConnectionManager
}

// FilterChainMatch selects a filter chain; empty fields match anything. Envoy's precedence
// applies: destination port, then server name (exact before wildcard), then transport
// protocol, then application protocol.
type FilterChainMatch struct {
	DestinationPort      uint32
	ServerNames          []string // exact or "*.suffix"
	TransportProtocol    string   // "", "tls" or "raw_buffer"
	ApplicationProtocols []string
}

// Certificate is a certificate chain with its private key, PEM encoded.
type Certificate struct {
	CertChainPEM  []byte
	PrivateKeyPEM []byte
	// CertFile and KeyFile name where the PEM came from, if a file (for reloads and dumps).
	CertFile, KeyFile string
}

// TLSParams are protocol version and cipher limits.
type TLSParams struct {
	MinVersion   uint16 // crypto/tls constants; 0 means the default (TLS 1.2)
	MaxVersion   uint16 // 0 means the highest supported
	CipherSuites []uint16
}

// DownstreamTLS terminates TLS on a filter chain.
type DownstreamTLS struct {
	Certificates      []Certificate
	Params            TLSParams
	ALPN              []string
	RequireClientCert bool
	ClientCAPEM       []byte // when set, client certificates are verified against it
	// CertificateSecrets and ValidationSecret name SDS secrets that supply Certificates and
	// ClientCAPEM; they are resolved before the listener is built.
	CertificateSecrets []SecretRef
	ValidationSecret   *SecretRef
}

// UpstreamTLS originates TLS to a cluster's endpoints.
type UpstreamTLS struct {
	SNI    string
	Params TLSParams
	ALPN   []string
	// TrustedCAPEM verifies the server; nil means no verification (Envoy's behaviour when no
	// validation context is given).
	TrustedCAPEM []byte
	// SystemRoots verifies the server against the operating system's trust store
	// (validation_context.system_root_certs) instead of TrustedCAPEM.
	SystemRoots bool
	// MatchSANs is the deprecated match_subject_alt_names: each matcher may match a SAN of
	// any type (DNS, URI, email, IP).
	MatchSANs []StringMatcher
	// MatchTypedSANs is match_typed_subject_alt_names; the peer passes when any matcher
	// matches a SAN of its type.
	MatchTypedSANs     []SANMatcher
	ClientCert         *Certificate
	AllowRenegotiation bool
	// ClientCertSecret and ValidationSecret name SDS secrets that supply ClientCert and the
	// verification fields; they are resolved before the cluster is built.
	ClientCertSecret *SecretRef
	ValidationSecret *SecretRef
}

// SANType is the kind of subject alternative name a SANMatcher looks at.
type SANType uint8

const (
	SANDNS SANType = iota + 1
	SANURI
	SANEmail
	SANIPAddress
)

// SANMatcher matches a certificate's subject alternative names of one type.
type SANMatcher struct {
	Type    SANType
	Matcher StringMatcher
}

// CodecType selects the downstream HTTP codec.
type CodecType uint8

const (
	CodecAuto CodecType = iota // sniff: HTTP/2 preface or ALPN h2, else HTTP/1.1
	CodecHTTP1
	CodecHTTP2
)

// UnderscoresAction is headers_with_underscores_action.
type UnderscoresAction uint8

const (
	UnderscoresAllow UnderscoresAction = iota
	UnderscoresRejectRequest
	UnderscoresDropHeader
)

// ForwardClientCert etc. are left for later issues; only what is decoded lives here.

// HTTPConnectionManager is the envoy.filters.network.http_connection_manager filter.
type HTTPConnectionManager struct {
	StatPrefix  string
	Codec       CodecType
	RouteConfig *RouteConfig // inline route_config
	// RDS names the route table when it comes from RDS (RouteConfig is then nil).
	RDS         *RDS
	HTTPFilters []HTTPFilter // last one is terminal (the router)

	UseRemoteAddress  bool
	XFFNumTrustedHops uint32
	ServerName        string // value of the Server response header; "" keeps Envoy's default
	// ServerHeaderPassThrough keeps an upstream's Server header (PASS_THROUGH) instead of
	// overwriting it.
	ServerHeaderPassThrough bool

	RequestTimeout        time.Duration // 0 = disabled
	RequestHeadersTimeout time.Duration // 0 = disabled
	StreamIdleTimeout     time.Duration // 0 = disabled
	IdleTimeout           time.Duration // connection idle; 0 = disabled
	DrainTimeout          time.Duration

	MaxRequestHeadersBytes    uint32 // from max_request_headers_kb
	MaxHeadersCount           uint32
	UnderscoresAction         UnderscoresAction
	GenerateRequestID         bool
	PreserveExternalRequestID bool
	NormalizePath             bool
	MergeSlashes              bool
	// UpgradeWebSocket enables the websocket upgrade (upgrade_configs).
	UpgradeWebSocket bool
	// StripAnyHostPort removes any port from the Host header before virtual host matching
	// (strip_any_host_port), so "example.com:8080" matches the domain "example.com".
	StripAnyHostPort bool

	HTTP2 HTTP2Options

	// AccessLogs are the compiled access_log entries (*accesslog.Logger), run at stream end.
	AccessLogs []any
	// Tracing is the tracing block; nil means requests are not traced.
	Tracing *Tracing
}

// HTTP2Options are downstream or upstream HTTP/2 protocol options.
type HTTP2Options struct {
	MaxConcurrentStreams        uint32
	InitialStreamWindowSize     uint32
	InitialConnectionWindowSize uint32
	// NetHTTPServer serves downstream HTTP/2 with golang.org/x/net/http2's server instead of
	// the gateway's own codec (internal/codec/http2). Downstream only; not an Envoy field.
	NetHTTPServer bool
}

// HTTPFilter is one entry of an HCM's http_filters list.
type HTTPFilter struct {
	Name    string
	TypeURL string
	// Config is the compiled filter configuration produced by the filter's factory (an
	// httpfilter.Config); opaque here.
	Config any
	// Disabled filters are skipped unless a route enables them.
	Disabled bool
}

// RouteConfig is a route table.
type RouteConfig struct {
	Name         string
	VirtualHosts []*VirtualHost
	Headers      HeaderMutation
	// ValidateClusters asks that every cluster a route names exists when the table is loaded
	// (Envoy's validate_clusters; true by default for a route_config inline in a static
	// listener). Without it a missing cluster answers ClusterNotFoundCode at request time.
	ValidateClusters bool
	// MostSpecificHeaderMutationsWins reverses the order header mutations are applied in
	// (route-config, virtual host, route instead of route, virtual host, route-config), so that
	// the most specific level's overwrites win.
	MostSpecificHeaderMutationsWins bool
	Source                          any // original resource, for /config_dump
}

// DisabledFilter is a typed_per_filter_config value that turns the named filter off for a
// virtual host or route (Envoy's FilterConfig with disabled: true).
type DisabledFilter struct{}

// EnabledFilter is a typed_per_filter_config value that turns on, for a virtual host or route,
// a filter the chain lists as disabled, with the chain's own config (Envoy's FilterConfig with
// disabled: false and no config).
type EnabledFilter struct{}

// HeaderMutation adds and removes request and response headers.
type HeaderMutation struct {
	RequestAdd     []HeaderValueOption
	RequestRemove  []string
	ResponseAdd    []HeaderValueOption
	ResponseRemove []string
}

// AppendAction is HeaderValueOption.append_action.
type AppendAction uint8

const (
	AppendIfExistsOrAdd AppendAction = iota
	AddIfAbsent
	OverwriteIfExistsOrAdd
	OverwriteIfExists
)

// HeaderValueOption is one header to add.
type HeaderValueOption struct {
	Name           string // lower-case
	Value          string // may hold %VAR% substitutions, validated by the decoder
	Action         AppendAction
	KeepEmptyValue bool
}

// VirtualHost groups routes under a set of domains.
type VirtualHost struct {
	Name                 string
	Domains              []string // "example.com", "*.example.com", "example.*", "*"
	Routes               []*Route
	Headers              HeaderMutation
	TypedPerFilterConfig map[string]any

	// RetryPolicy applies to the virtual host's routes that set none of their own.
	RetryPolicy *RetryPolicy
	// IncludeRequestAttemptCount adds x-envoy-attempt-count to upstream requests, and
	// IncludeAttemptCountInResponse to downstream responses.
	IncludeRequestAttemptCount    bool
	IncludeAttemptCountInResponse bool
	// PerRequestBufferLimitBytes bounds the request body kept for retries and mirrors
	// (nil: the listener's buffer limit).
	PerRequestBufferLimitBytes *uint32
}

// Route is one match → action rule.
type Route struct {
	Name                 string
	Match                RouteMatch
	Route                *RouteAction
	Redirect             *RedirectAction
	DirectResponse       *DirectResponseAction
	Headers              HeaderMutation
	TypedPerFilterConfig map[string]any
	// PerRequestBufferLimitBytes overrides the virtual host's limit when set.
	PerRequestBufferLimitBytes *uint32
}

// PathMatchKind is how RouteMatch.Path is compared.
type PathMatchKind uint8

const (
	PathPrefix PathMatchKind = iota
	PathExact
	PathRegex
	PathSeparatedPrefix
	PathTemplate // uri_template / path_match_policy: "/users/{id}/**"
)

// RouteMatch selects requests.
type RouteMatch struct {
	PathKind        PathMatchKind
	Path            string
	CaseInsensitive bool
	Headers         []HeaderMatcher
	QueryParameters []QueryParameterMatcher
}

// StringMatchKind enumerates StringMatcher forms.
type StringMatchKind uint8

const (
	StringExact StringMatchKind = iota
	StringPrefix
	StringSuffix
	StringContains
	StringRegex
)

// StringMatcher is Envoy's type.matcher.v3.StringMatcher.
type StringMatcher struct {
	Kind       StringMatchKind
	Value      string // for StringRegex, an RE2 pattern already checked to compile
	IgnoreCase bool
}

// HeaderMatchKind enumerates HeaderMatcher forms.
type HeaderMatchKind uint8

const (
	HeaderString  HeaderMatchKind = iota // String applies
	HeaderPresent                        // Present applies
	HeaderRange                          // RangeStart <= int(value) < RangeEnd
)

// HeaderMatcher matches one request header (or pseudo-header).
type HeaderMatcher struct {
	Name                string // lower-case
	Kind                HeaderMatchKind
	String              StringMatcher
	Present             bool
	RangeStart          int64
	RangeEnd            int64
	Invert              bool
	TreatMissingAsEmpty bool
}

// QueryParameterMatcher matches one query parameter.
type QueryParameterMatcher struct {
	Name    string
	String  *StringMatcher // nil with Present means presence only
	Present bool
}

// RouteAction forwards to a cluster.
type RouteAction struct {
	Cluster          string
	WeightedClusters []WeightedCluster
	ClusterHeader    string
	// ClusterNotFoundCode answers when the named cluster does not exist (503 or 404).
	ClusterNotFoundCode int

	PrefixRewrite      string
	RegexRewrite       *RegexRewrite
	HostRewriteLiteral string
	AutoHostRewrite    bool

	Timeout     time.Duration // 0 disables; decoders apply Envoy's 15 s default
	IdleTimeout time.Duration
	// UpgradeWebSocket overrides the HCM's websocket setting for this route when non-nil.
	UpgradeWebSocket *bool

	// MaxStreamDuration bounds the whole stream, response included (0 = none).
	MaxStreamDuration time.Duration
	// HighPriority is routing priority HIGH: the cluster's HIGH circuit breakers apply.
	HighPriority bool
	// GrpcTimeoutHeaderMax caps the grpc-timeout a gRPC request asks for; when set (0 = no
	// cap) the header's value becomes the stream's maximum duration.
	GrpcTimeoutHeaderMax *time.Duration
	// GrpcTimeoutHeaderOffset is subtracted from a grpc-timeout header's value.
	GrpcTimeoutHeaderOffset time.Duration

	// RetryPolicy is the route's own retry_policy (nil: the virtual host's, if any).
	RetryPolicy *RetryPolicy
	// HashPolicy computes the request hash consistent-hashing load balancers use.
	HashPolicy []HashPolicy
	// RequestMirrorPolicies shadow requests to other clusters.
	RequestMirrorPolicies []MirrorPolicy
}

// RetryOn is a set of retry conditions (Envoy's retry_on).
type RetryOn uint32

const (
	Retry5xx RetryOn = 1 << iota
	RetryGatewayError
	RetryReset
	RetryConnectFailure
	RetryRetriable4xx
	RetryRefusedStream
	RetryRetriableStatusCodes
	RetryRetriableHeaders
)

// RetryOnNames are the retry_on tokens, indexed by bit.
var RetryOnNames = [...]string{
	"5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "refused-stream",
	"retriable-status-codes", "retriable-headers",
}

// RetryPolicy is Envoy's route.v3.RetryPolicy subset.
type RetryPolicy struct {
	RetryOn RetryOn
	// NumRetries is the number of retries after the first attempt (Envoy's default 1).
	NumRetries uint32
	// PerTryTimeout bounds each attempt (0: only the route timeout).
	PerTryTimeout time.Duration
	// PerTryIdleTimeout bounds the silence within an attempt (0: none).
	PerTryIdleTimeout time.Duration
	// RetriableStatusCodes are retried with RetryRetriableStatusCodes.
	RetriableStatusCodes []uint32
	// RetriableHeaders are response header matches retried with RetryRetriableHeaders.
	RetriableHeaders []HeaderMatcher
	// BackOffBase and BackOffMax are retry_back_off (decoders apply 25 ms and 10× base).
	BackOffBase, BackOffMax time.Duration
	// PreviousHosts is the envoy.retry_host_predicates.previous_hosts predicate: a retry
	// avoids hosts already tried.
	PreviousHosts bool
	// HostSelectionMaxAttempts is host_selection_retry_max_attempts (at least 1).
	HostSelectionMaxAttempts uint32
}

// HashPolicyKind is the request property a hash policy reads.
type HashPolicyKind uint8

const (
	HashHeader HashPolicyKind = iota
	HashCookie
	HashSourceIP
	HashQueryParameter
)

// HashPolicy is one route hash_policy entry.
type HashPolicy struct {
	Kind HashPolicyKind
	// Name is the header (lower-case), cookie or query parameter name.
	Name string
	// CookieTTL, when set, makes the router generate the cookie when the request lacks it.
	CookieTTL *time.Duration
	// CookiePath is the generated cookie's Path attribute.
	CookiePath string
	// Terminal stops evaluating later policies once this one produced a hash.
	Terminal bool
}

// MirrorPolicy is one request_mirror_policies entry.
type MirrorPolicy struct {
	Cluster string
	// Numerator/Denominator is the runtime_fraction default (1/1 when unset).
	Numerator, Denominator uint32
}

// WeightedCluster is one entry of weighted_clusters.
type WeightedCluster struct {
	Name    string
	Weight  uint32
	Headers HeaderMutation
}

// RegexRewrite is a regex substitution on the path (RE2, with \1 style groups).
type RegexRewrite struct {
	Pattern      string
	Substitution string
}

// RedirectAction answers with a redirect.
type RedirectAction struct {
	Scheme        string // "" keeps; "https" for https_redirect
	Host          string
	Port          uint32
	Path          string
	PrefixRewrite string
	RegexRewrite  *RegexRewrite
	Code          int // 301, 302, 303, 307, 308
	StripQuery    bool
}

// DirectResponseAction answers locally.
type DirectResponseAction struct {
	Status int
	Body   []byte
}

// ClusterType is how a cluster discovers endpoints.
type ClusterType uint8

const (
	ClusterStatic ClusterType = iota
	ClusterStrictDNS
	ClusterLogicalDNS
	ClusterEDS
)

// LBPolicy is a cluster's load-balancing policy.
type LBPolicy uint8

const (
	LBRoundRobin LBPolicy = iota
	LBLeastRequest
	LBRandom
	LBRingHash
	LBMaglev
)

// UpstreamProtocol is the protocol spoken to a cluster's endpoints.
type UpstreamProtocol uint8

const (
	UpstreamHTTP1 UpstreamProtocol = iota
	UpstreamHTTP2
	UpstreamUseDownstream
)

// DNSFamily is dns_lookup_family.
type DNSFamily uint8

const (
	DNSAuto DNSFamily = iota // Envoy's AUTO: IPv6 first, fall back to IPv4
	DNSV4Only
	DNSV6Only
	DNSV4Preferred
	DNSAll
)

// Cluster is a named group of upstream endpoints.
type Cluster struct {
	Name             string
	Type             ClusterType
	LBPolicy         LBPolicy
	ConnectTimeout   time.Duration
	BufferLimitBytes uint32
	Protocol         UpstreamProtocol
	HTTP2            HTTP2Options
	TLS              *UpstreamTLS

	Localities []LocalityEndpoints
	// EDS is set for EDS clusters: where their endpoints come from.
	EDS *EDSConfig

	DNSRefreshRate time.Duration
	DNSFamily      DNSFamily
	RespectDNSTTL  bool

	// IdleTimeout closes upstream connections idle this long (common_http_protocol_options).
	IdleTimeout time.Duration
	// MaxRequestsPerConnection closes a connection after this many requests (0 = unlimited).
	MaxRequestsPerConnection uint32
	// MaxConnections is the default-priority circuit breaker on connections (0 = Envoy's 1024).
	MaxConnections uint32
	// CircuitBreakers are the request-level thresholds per priority; nil means Envoy's
	// defaults for both priorities.
	CircuitBreakers *CircuitBreakers

	// LB tunes the load balancer: policy-specific settings, priorities and localities.
	LB LBConfig
	// HealthCheck is the active health check; nil checks nothing.
	HealthCheck *HealthCheck
	// OutlierDetection ejects misbehaving hosts from load balancing; nil disables it.
	OutlierDetection *OutlierDetection

	Source any // original resource, for /config_dump
}

// LocalityEndpoints is one locality's endpoints at one priority.
type LocalityEndpoints struct {
	Region, Zone, SubZone string
	Priority              uint32
	Weight                uint32
	Endpoints             []Endpoint
}

// Endpoint is one upstream host.
type Endpoint struct {
	Address  SocketAddress
	Weight   uint32 // >= 1
	Hostname string
	// Unhealthy marks an endpoint reported unhealthy by its source (EDS health_status).
	Unhealthy bool
	// Degraded marks an endpoint reported DEGRADED: used only when too few healthy ones remain.
	Degraded bool
}

// LBConfig holds the load-balancing settings beside LBPolicy. Zero values (and nil
// pointers, where 0 is meaningful) mean Envoy's defaults.
type LBConfig struct {
	// HealthyPanicThreshold is a percentage (0-100; nil = 50): a priority level with fewer
	// healthy hosts than this balances over all its hosts, ignoring health. 0 disables
	// panic mode.
	HealthyPanicThreshold *float64
	// OverprovisioningFactor is a percentage (0 = Envoy's 140): a priority level keeps all
	// of its traffic while healthy hosts × factor ≥ 100% of its hosts.
	OverprovisioningFactor uint32
	// LocalityWeighted picks a locality by weight × availability, then a host within it.
	LocalityWeighted bool

	// ChoiceCount is the number of random hosts LEAST_REQUEST compares (0 = 2).
	ChoiceCount uint32
	// ActiveRequestBias is the exponent of (active requests + 1) that divides a host's
	// weight under LEAST_REQUEST with unequal weights (nil = 1.0).
	ActiveRequestBias *float64

	// MinRingSize and MaxRingSize bound the RING_HASH ring (0 = 1024 and 8M).
	MinRingSize, MaxRingSize uint64
	// MaglevTableSize is the MAGLEV lookup table size, a prime (0 = 65537).
	MaglevTableSize uint64
}

// RoutingPriority is a circuit-breaker priority (Envoy's RoutingPriority).
type RoutingPriority uint8

const (
	PriorityDefault RoutingPriority = iota
	PriorityHigh
)

// CircuitBreakers are the thresholds of each routing priority.
type CircuitBreakers struct {
	Default, High Thresholds
}

// Thresholds are one priority's circuit-breaker limits, taken literally (decoders fill in
// Envoy's defaults: 1024 connections, pending and requests, 3 retries).
type Thresholds struct {
	MaxConnections     uint32
	MaxPendingRequests uint32
	MaxRequests        uint32
	MaxRetries         uint32
	// RetryBudget, when set, replaces MaxRetries.
	RetryBudget *RetryBudget
}

// RetryBudget limits concurrent retries to a share of the active and pending requests.
type RetryBudget struct {
	BudgetPercent       float64 // of active + pending requests (Envoy's default 20)
	MinRetryConcurrency uint32  // retries always allowed (Envoy's default 3)
}

// HealthCheckKind is the protocol of an active health check.
type HealthCheckKind uint8

const (
	HealthCheckHTTP HealthCheckKind = iota
	HealthCheckTCP
	HealthCheckGRPC
)

// HealthCheck is an active health check of every host of a cluster. Decoders fill in
// Envoy's defaults; zero intervals fall back to Interval.
type HealthCheck struct {
	Kind HealthCheckKind

	Timeout               time.Duration
	Interval              time.Duration
	IntervalJitter        time.Duration // a random extra delay up to this
	IntervalJitterPercent uint32        // a random extra delay up to this share of the interval
	// UnhealthyThreshold failed checks in a row mark a host unhealthy; HealthyThreshold
	// passed ones mark it healthy again (a new host's first pass marks it healthy at once).
	UnhealthyThreshold uint32
	HealthyThreshold   uint32
	// NoTrafficInterval replaces Interval for hosts that have carried no request yet.
	NoTrafficInterval time.Duration
	// UnhealthyInterval replaces Interval for unhealthy hosts.
	UnhealthyInterval time.Duration
	// UnhealthyEdgeInterval and HealthyEdgeInterval are the next interval right after a host
	// turns unhealthy or healthy.
	UnhealthyEdgeInterval time.Duration
	HealthyEdgeInterval   time.Duration

	HTTP *HTTPHealthCheck
	TCP  *TCPHealthCheck
	GRPC *GRPCHealthCheck
}

// HTTPHealthCheck sends a GET over HTTP/1.1 and expects one of ExpectedStatuses.
type HTTPHealthCheck struct {
	Host string // the authority; "" = the cluster name, as Envoy
	Path string
	// ExpectedStatuses are half-open ranges [Start, End); empty means 200 only.
	ExpectedStatuses []StatusRange
	RequestHeaders   []HeaderValue
	RemoveHeaders    []string
}

// StatusRange is the HTTP statuses from Start up to, not including, End.
type StatusRange struct{ Start, End int }

// HeaderValue is one header to add to a health check request.
type HeaderValue struct {
	Name, Value string
	Append      bool // add beside an existing value instead of replacing it
}

// TCPHealthCheck connects and, when Send is set, writes it and expects every Receive block
// in order in the reply. With neither, a successful connect passes.
type TCPHealthCheck struct {
	Send    []byte
	Receive [][]byte
}

// GRPCHealthCheck calls grpc.health.v1.Health/Check.
type GRPCHealthCheck struct {
	ServiceName string
	Authority   string // "" = the cluster name
}

// OutlierDetection configures passive health checking: hosts that fail are ejected from
// load balancing for a while. Decoders fill in Envoy's defaults; the enforcing_* values are
// percentages (0 detects and counts without ejecting).
type OutlierDetection struct {
	Interval         time.Duration
	BaseEjectionTime time.Duration
	MaxEjectionTime  time.Duration
	// MaxEjectionPercent caps the share of hosts ejected at once.
	MaxEjectionPercent uint32

	Consecutive5xx                     uint32
	EnforcingConsecutive5xx            uint32
	ConsecutiveGatewayFailure          uint32
	EnforcingConsecutiveGatewayFailure uint32
	// SplitExternalLocalOriginErrors counts connect failures, resets and timeouts apart from
	// HTTP statuses (as ConsecutiveLocalOriginFailure); otherwise they count as 503s.
	SplitExternalLocalOriginErrors         bool
	ConsecutiveLocalOriginFailure          uint32
	EnforcingConsecutiveLocalOriginFailure uint32

	EnforcingSuccessRate            uint32
	EnforcingLocalOriginSuccessRate uint32
	SuccessRateMinimumHosts         uint32
	SuccessRateRequestVolume        uint32
	SuccessRateStdevFactor          uint32 // thousandths: 1900 = 1.9

	FailurePercentageThreshold            uint32
	EnforcingFailurePercentage            uint32
	EnforcingFailurePercentageLocalOrigin uint32
	FailurePercentageMinimumHosts         uint32
	FailurePercentageRequestVolume        uint32
	// SuccessfulActiveHealthCheckUnejectHost returns an ejected host as soon as an active
	// health check passes.
	SuccessfulActiveHealthCheckUnejectHost bool
}
