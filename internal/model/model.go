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
}

// HTTP2Options are downstream or upstream HTTP/2 protocol options.
type HTTP2Options struct {
	MaxConcurrentStreams        uint32
	InitialStreamWindowSize     uint32
	InitialConnectionWindowSize uint32
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

	DNSRefreshRate time.Duration
	DNSFamily      DNSFamily
	RespectDNSTTL  bool

	// IdleTimeout closes upstream connections idle this long (common_http_protocol_options).
	IdleTimeout time.Duration
	// MaxRequestsPerConnection closes a connection after this many requests (0 = unlimited).
	MaxRequestsPerConnection uint32
	// MaxConnections is the default-priority circuit breaker on connections (0 = Envoy's 1024).
	MaxConnections uint32

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
