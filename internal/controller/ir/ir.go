// Package ir is the controller's intermediate representation: what a Kubernetes translation
// (Ingress today) decided the gateway should do, in plain values that serialise to YAML and
// validate on their own, before any Envoy message is built. Keeping the decisions here and the
// Envoy encoding in one place lets each be tested alone, and lets `nuncio translate` show users
// what their objects mean without reading xDS.
package ir

import (
	"cmp"
	"slices"
	"time"
)

// Config is everything the gateway serves.
type Config struct {
	// HTTPPort and HTTPSPort are the ports of the plain and TLS listeners.
	HTTPPort  uint32 `json:"httpPort"`
	HTTPSPort uint32 `json:"httpsPort"`
	// VirtualHosts are served on both listeners; the TLS listener serves the ones whose host
	// has a certificate (or all of them on its default chain).
	VirtualHosts []*VirtualHost `json:"virtualHosts,omitempty"`
	Clusters     []*Cluster     `json:"clusters,omitempty"`
	Secrets      []*Secret      `json:"secrets,omitempty"`
	// Passthrough hosts are TLS connections forwarded by SNI without termination.
	Passthrough []*Passthrough `json:"passthrough,omitempty"`
	// DefaultCertificate names the secret served to clients that send no or an unknown SNI.
	DefaultCertificate string `json:"defaultCertificate,omitempty"`
	// AccessLog enables the listeners' access log (the ConfigMap's enable-access-log-for-default-backend
	// and per-route disabling come on top).
	AccessLog bool `json:"accessLog,omitempty"`
}

// VirtualHost is one host name (or the catch-all "*") with its routes, in match order.
type VirtualHost struct {
	// Name is unique; it is the host itself, "*" for the catch-all.
	Name string `json:"name"`
	// Domains are the Host header values served, including aliases.
	Domains []string `json:"domains"`
	// TLS names the secret holding the host's certificate when the host is served over TLS.
	TLS *HostTLS `json:"tls,omitempty"`
	// Routes are in match order: the first route matching a request serves it.
	Routes []*Route `json:"routes,omitempty"`
}

// HostTLS is a host's certificate and client-certificate requirements.
type HostTLS struct {
	Secret string `json:"secret"`
	// ClientCA names a secret with the CA bundle client certificates must chain to.
	ClientCA string `json:"clientCA,omitempty"`
	// RequireClientCert is auth-tls-verify-client "on"; "optional" validates a certificate
	// when one is sent.
	RequireClientCert bool `json:"requireClientCert,omitempty"`
	// Ciphers restricts the cipher suites (ssl-ciphers).
	Ciphers []string `json:"ciphers,omitempty"`
}

// PathKind is how a route's path matches.
type PathKind string

const (
	PathExact  PathKind = "Exact"
	PathPrefix PathKind = "Prefix" // by path segment: /foo matches /foo and /foo/bar, not /foobar
	PathRegex  PathKind = "Regex"  // RE2, anchored at the start as nginx's location ~*
	// PathStringPrefix is a plain string prefix (nginx's location /foo, which matches /foobar).
	PathStringPrefix PathKind = "StringPrefix"
	// PathAny matches every path, for default backends.
	PathAny PathKind = "Any"
)

// Route is one path of one Ingress rule, with what the annotations made of it.
type Route struct {
	// Name is unique within its virtual host and says where the route comes from.
	Name string `json:"name"`
	// Source is the Ingress ("cluster/namespace/name") the route comes from, for Events.
	Source string `json:"source,omitempty"`
	Match  Match  `json:"match"`
	// Exactly one of Backends, Redirect and Respond is set.
	Backends []WeightedBackend `json:"backends,omitempty"`
	Redirect *Redirect         `json:"redirect,omitempty"`
	Respond  *Respond          `json:"respond,omitempty"`
	Policy   `json:",inline"`
}

// Match selects requests.
type Match struct {
	Kind PathKind `json:"kind"`
	Path string   `json:"path,omitempty"`
	// Headers must all match (canary-by-header and canary-by-cookie).
	Headers []HeaderMatch `json:"headers,omitempty"`
	// CaseInsensitive regexes, as nginx's ~* locations.
	CaseInsensitive bool `json:"caseInsensitive,omitempty"`
}

// HeaderMatch matches one header; exactly one of Exact, Regex and Present is used.
type HeaderMatch struct {
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
	Invert  bool   `json:"invert,omitempty"`
}

// WeightedBackend is a cluster and its share of the route's traffic.
type WeightedBackend struct {
	Cluster string `json:"cluster"`
	Weight  uint32 `json:"weight"`
}

// Redirect answers with a redirect. Empty fields keep the request's value.
type Redirect struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Port   uint32 `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	// PrefixRewrite replaces the matched prefix (from-to-www keeps the path this way).
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	Code          int    `json:"code"`
	StripQuery    bool   `json:"stripQuery,omitempty"`
}

// Respond answers directly.
type Respond struct {
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"`
}

// Policy is what annotations add to a forwarding route.
type Policy struct {
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Timeout bounds the whole request (0: none, as nginx, whose timeouts are per operation);
	// IdleTimeout is proxy-read/send-timeout.
	Timeout     *Duration `json:"timeout,omitempty"`
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
	Retry       *Retry    `json:"retry,omitempty"`
	Hash        []Hash    `json:"hash,omitempty"`
	Mirrors     []string  `json:"mirrors,omitempty"` // cluster names
	// RequestHeaders and ResponseHeaders are set (overwriting) on the way through.
	RequestHeaders  []Header `json:"requestHeaders,omitempty"`
	ResponseHeaders []Header `json:"responseHeaders,omitempty"`
	// RemoveRequestHeaders are removed before forwarding.
	RemoveRequestHeaders []string `json:"removeRequestHeaders,omitempty"`
	// HTTPSRedirect makes the route redirect plain HTTP requests to https (308).
	HTTPSRedirect bool `json:"httpsRedirect,omitempty"`
	// WebSocket upgrades are allowed (nginx allows them everywhere).
	WebSocket bool `json:"webSocket,omitempty"`
	// DisableAccessLog is enable-access-log "false".
	DisableAccessLog bool `json:"disableAccessLog,omitempty"`
	// BufferLimit bounds the request body kept for retries and mirrors.
	BufferLimit uint32 `json:"bufferLimit,omitempty"`

	// Filters the data plane does not run yet; the translator only sets them when the
	// operator allowed unenforced policies (see package ingress).
	CORS         *CORS         `json:"cors,omitempty"`
	RateLimit    *RateLimit    `json:"rateLimit,omitempty"`
	IPFilter     *IPFilter     `json:"ipFilter,omitempty"`
	BasicAuth    *BasicAuth    `json:"basicAuth,omitempty"`
	ExtAuth      *ExtAuth      `json:"extAuth,omitempty"`
	CustomErrors *CustomErrors `json:"customErrors,omitempty"`
	// MaxRequestBytes is proxy-body-size (the buffer filter's max_request_bytes).
	MaxRequestBytes uint32 `json:"maxRequestBytes,omitempty"`
}

// Rewrite changes the request on its way upstream.
type Rewrite struct {
	// Regex replaces the whole path matching Pattern with Substitution (\1 for groups).
	Pattern      string `json:"pattern,omitempty"`
	Substitution string `json:"substitution,omitempty"`
	// Host replaces the Host header.
	Host string `json:"host,omitempty"`
}

// Retry is proxy-next-upstream.
type Retry struct {
	On          []string  `json:"on"` // Envoy retry_on tokens
	StatusCodes []uint32  `json:"statusCodes,omitempty"`
	NumRetries  uint32    `json:"numRetries"`
	PerTry      *Duration `json:"perTryTimeout,omitempty"`
}

// Hash is one hash policy entry; one field is set.
type Hash struct {
	Header   string      `json:"header,omitempty"`
	Query    string      `json:"query,omitempty"`
	SourceIP bool        `json:"sourceIP,omitempty"`
	Cookie   *HashCookie `json:"cookie,omitempty"`
}

// HashCookie is cookie affinity: Envoy sets the cookie when the request has none.
type HashCookie struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"`
	TTL  *Duration `json:"ttl,omitempty"`
}

// Header is a name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// CORS is enable-cors with the cors-* keys.
type CORS struct {
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     string   `json:"allowMethods"`
	AllowHeaders     string   `json:"allowHeaders"`
	ExposeHeaders    string   `json:"exposeHeaders,omitempty"`
	AllowCredentials bool     `json:"allowCredentials"`
	MaxAge           string   `json:"maxAge"`
}

// RateLimit is limit-rps / limit-rpm per client address; Burst is the token bucket size.
type RateLimit struct {
	Tokens   uint32   `json:"tokens"`
	Interval Duration `json:"interval"`
	Burst    uint32   `json:"burst"`
	// Connections is limit-connections (concurrent requests per client).
	Connections uint32 `json:"connections,omitempty"`
	// Exempt client ranges (limit-whitelist).
	Exempt []string `json:"exempt,omitempty"`
}

// IPFilter admits or denies clients by address.
type IPFilter struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// BasicAuth holds htpasswd lines (user:hash).
type BasicAuth struct {
	Realm string   `json:"realm,omitempty"`
	Users []string `json:"users"`
}

// ExtAuth is auth-url: each request is first sent to an authorization service.
type ExtAuth struct {
	Cluster         string   `json:"cluster"`
	URL             string   `json:"url"`
	Method          string   `json:"method,omitempty"`
	ResponseHeaders []string `json:"responseHeaders,omitempty"`
	SignIn          string   `json:"signIn,omitempty"`
	RequestRedirect string   `json:"requestRedirect,omitempty"`
}

// CustomErrors sends upstream responses with these codes to a backend's error page.
type CustomErrors struct {
	Codes   []uint32 `json:"codes"`
	Cluster string   `json:"cluster"`
}

// ClusterKind is how a cluster finds its endpoints.
type ClusterKind string

const (
	ClusterEDS ClusterKind = "EDS" // endpoints served over EDS (pod IPs)
	ClusterDNS ClusterKind = "DNS" // STRICT_DNS over one host name (ExternalName)
)

// Cluster is one upstream.
type Cluster struct {
	Name string      `json:"name"`
	Kind ClusterKind `json:"kind"`
	// Protocol is HTTP1, HTTP2 (h2c or h2 over TLS).
	Protocol       string    `json:"protocol"`
	ConnectTimeout *Duration `json:"connectTimeout,omitempty"`
	// LB is an Envoy lb_policy name: ROUND_ROBIN, LEAST_REQUEST, RING_HASH, MAGLEV, RANDOM.
	LB  string       `json:"lb"`
	TLS *UpstreamTLS `json:"tls,omitempty"`
	// Localities hold EDS endpoints; DNS clusters have one locality with one host name.
	Localities []Locality `json:"localities"`
}

// UpstreamTLS is HTTPS/GRPCS to the backend.
type UpstreamTLS struct {
	SNI string `json:"sni,omitempty"`
	// CA is the trusted CA bundle (PEM); empty with Verify means the system roots.
	CA     string `json:"ca,omitempty"`
	Verify bool   `json:"verify"`
	// VerifyName is the DNS name the certificate must carry when Verify is on.
	VerifyName string `json:"verifyName,omitempty"`
	// ClientSecret names the secret with a client certificate to present.
	ClientSecret string `json:"clientSecret,omitempty"`
	// Ciphers and the protocol range restrict the handshake ("" and nil: defaults).
	Ciphers    []string `json:"ciphers,omitempty"`
	MinVersion string   `json:"minVersion,omitempty"`
	MaxVersion string   `json:"maxVersion,omitempty"`
}

// Locality is a Kubernetes cluster's endpoints for a Service.
type Locality struct {
	Zone      string     `json:"zone"`
	Priority  uint32     `json:"priority,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is an address and port; Host is a DNS name for DNS clusters.
type Endpoint struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
}

// Secret is a certificate and key (PEM), or a CA bundle alone.
type Secret struct {
	Name string `json:"name"`
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	CA   string `json:"ca,omitempty"`
}

// Passthrough forwards TLS for SNI host to a cluster untouched.
type Passthrough struct {
	Host    string `json:"host"`
	Cluster string `json:"cluster"`
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

// Sort orders every list by name, so that the output does not depend on the order objects
// were listed in.
func (c *Config) Sort() {
	slices.SortFunc(c.VirtualHosts, func(a, b *VirtualHost) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Clusters, func(a, b *Cluster) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Secrets, func(a, b *Secret) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Passthrough, func(a, b *Passthrough) int { return cmp.Compare(a.Host, b.Host) })
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
