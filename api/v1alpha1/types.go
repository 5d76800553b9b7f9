// Package v1alpha1 is the simple Nuncio config: a small, hand-writable description of listeners,
// routes and backends that the controller translates into Envoy v3 resources.
//
// A config looks like this:
//
//	apiVersion: nuncio.dev/v1alpha1
//	kind: Config
//	listeners:
//	- name: web
//	  address: 0.0.0.0:8080
//	  routes:
//	  - match: {prefix: /api/}
//	    backend: api
//	backends:
//	- name: api
//	  endpoints: ["10.0.0.1:8080"]
//
// The doc comments on the types and fields below are also the descriptions in the JSON Schema
// (nuncio.schema.json): Schema reads them from this file, so they are written for users.
package v1alpha1

//go:generate go run ./internal/schemagen nuncio.schema.json

// APIVersion is the only apiVersion this package accepts.
const APIVersion = "nuncio.dev/v1alpha1"

// KindConfig is the only kind this package accepts.
const KindConfig = "Config"

// Config is a whole Nuncio config.
type Config struct {
	// Must be "nuncio.dev/v1alpha1".
	APIVersion string `json:"apiVersion"`
	// Must be "Config".
	Kind string `json:"kind"`
	// The admin API's listener. Without it, the admin API is not served.
	Admin *Admin `json:"admin,omitempty"`
	// Where Nuncio accepts connections, and how requests are routed. At least one is required.
	Listeners []Listener `json:"listeners"`
	// The upstream services that routes send requests to.
	Backends []Backend `json:"backends,omitempty"`
}

// Admin is the admin API's listener.
type Admin struct {
	// host:port to serve the admin API on, e.g. 127.0.0.1:9901. The host must be an IP address.
	Address string `json:"address"`
}

// Listener accepts connections on one address and routes their requests.
type Listener struct {
	// Unique name; also the name of the Envoy listener and its route table.
	Name string `json:"name"`
	// host:port to listen on, e.g. 0.0.0.0:8080, or [::]:8080 for IPv6. The host must be an IP address.
	Address string `json:"address"`
	// Terminates TLS with the given certificates. Without it, the listener speaks plaintext.
	TLS *ListenerTLS `json:"tls,omitempty"`
	// Accepts HTTP/2: offered via ALPN with TLS, and as h2c with prior knowledge on plaintext.
	HTTP2 bool `json:"http2,omitempty"`
	// Caps concurrent connections; further connections are closed at once. 0 means no limit.
	MaxConnections uint32 `json:"maxConnections,omitempty"`
	// Allows WebSocket upgrades on every route that sends requests to a backend.
	WebSocket bool `json:"websocket,omitempty"`
	// Downstream timeouts. Unset timeouts keep Envoy's defaults.
	Timeouts *ListenerTimeouts `json:"timeouts,omitempty"`
	// Writes a line per request. Without it, nothing is logged.
	AccessLog *AccessLog `json:"accessLog,omitempty"`
	// Routes, tried in order; the first match wins. Routes are grouped by their hosts: a request
	// is only matched against the routes whose hosts match its Host header most specifically.
	Routes []Route `json:"routes"`
}

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// Certificates chosen by the client's SNI. A certificate without hosts is the default; if
	// every certificate lists hosts, the first one also serves clients that send no or unknown SNI.
	Certificates []Certificate `json:"certificates"`
	// Lowest TLS version accepted: "1.0", "1.1", "1.2" or "1.3". Default "1.2".
	MinVersion string `json:"minVersion,omitempty"`
}

// Certificate is a certificate chain and its private key, both PEM files.
type Certificate struct {
	// PEM certificate chain file, relative to the config file's directory unless absolute.
	Cert string `json:"cert"`
	// PEM private key file, relative to the config file's directory unless absolute.
	Key string `json:"key"`
	// SNI names this certificate serves, e.g. a.example.com or *.example.com.
	Hosts []string `json:"hosts,omitempty"`
}

// AccessLog writes one line per request, formatted with Envoy's command operators.
type AccessLog struct {
	// File to append to, relative to the config file's directory unless absolute. Default
	// /dev/stdout; /dev/stderr also writes to the process's stream.
	Path string `json:"path,omitempty"`
	// Envoy format string, e.g. "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %DURATION%\n".
	// Default: Envoy's default format. Not with json.
	Format string `json:"format,omitempty"`
	// One JSON object per line: each value is a format string. A value that is a single
	// operator such as %RESPONSE_CODE% keeps its type (a number), and null when absent.
	JSON map[string]string `json:"json,omitempty"`
}

// ListenerTimeouts are a listener's downstream timeouts. "0s" disables a timeout.
type ListenerTimeouts struct {
	// Time to receive a whole request, headers and body. Envoy's default is none.
	Request *Duration `json:"request,omitempty"`
	// Time a connection may stay open with no active request. Envoy's default is 1h.
	Idle *Duration `json:"idle,omitempty"`
	// Time a request may go without sending or receiving data. Envoy's default is 5m.
	StreamIdle *Duration `json:"streamIdle,omitempty"`
}

// Route matches requests and says what to do with them: send them to one backend (backend),
// split them over several (backends), redirect them (redirect) or answer directly (respond).
// Exactly one of the four is required.
type Route struct {
	// Optional name, unique within the listener; shown in stats and logs.
	Name string `json:"name,omitempty"`
	// Host headers this route serves: exact names, *.example.com wildcards, or "*" (the default).
	Hosts []string `json:"hosts,omitempty"`
	// Which requests match. Without it, every request matches.
	Match *Match `json:"match,omitempty"`
	// Sends matching requests to this backend.
	Backend string `json:"backend,omitempty"`
	// Splits matching requests over several backends by weight.
	Backends []WeightedBackend `json:"backends,omitempty"`
	// Rewrites the path or Host header before forwarding to a backend.
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Answers matching requests with a redirect.
	Redirect *Redirect `json:"redirect,omitempty"`
	// Answers matching requests directly, with a fixed status and body.
	Respond *Respond `json:"respond,omitempty"`
	// Adds, sets or removes request and response headers.
	Headers *HeaderRules `json:"headers,omitempty"`
	// Time for the backend to send its whole response. Envoy's default is 15s; "0s" disables it.
	Timeout *Duration `json:"timeout,omitempty"`
	// Time the request may go without sending or receiving data; overrides the listener's streamIdle.
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
	// Retries failed requests, on other endpoints when the backend has several.
	Retries *Retries `json:"retries,omitempty"`
	// Copies requests to another backend, whose answers are discarded.
	Mirror *Mirror `json:"mirror,omitempty"`
	// What a request is hashed on, for backends balanced by ringHash or maglev. Values found are
	// combined in order.
	Hash []Hash `json:"hash,omitempty"`
	// Injects delays and errors, to test how clients cope.
	Fault *Fault `json:"fault,omitempty"`
	// Limits the requests each client address may make; requests over the limit get 429.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
	// Requires clients to authenticate, or checks each request with a service, before it is forwarded.
	Auth *Auth `json:"auth,omitempty"`
	// Runs proxy-wasm plugins on the route's requests, in order.
	Plugins []Plugin `json:"plugins,omitempty"`
}

// RateLimit gives each client address a token bucket: it holds burst requests and refills by
// requests every per.
type RateLimit struct {
	// Requests allowed per period, at least 1.
	Requests uint32 `json:"requests"`
	// The period, at least 50ms. Default 1s.
	Per *Duration `json:"per,omitempty"`
	// Requests a client may make at once. Default requests.
	Burst *uint32 `json:"burst,omitempty"`
}

// Auth checks requests before they are forwarded; a request that fails a check is answered by
// the gateway and never reaches the backend.
type Auth struct {
	// Requires a JSON Web Token signed by an issuer's keys.
	JWT *JWTAuth `json:"jwt,omitempty"`
	// Asks an external authorization service about each request (Envoy's ext_authz).
	ExtAuth *ExtAuth `json:"extAuth,omitempty"`
	// HTTP Basic authentication against htpasswd users (401 without valid credentials).
	Basic *BasicAuth `json:"basic,omitempty"`
	// Client addresses or CIDR ranges allowed; others get 403. The client address is the
	// connection's peer, or the X-Forwarded-For entry the listener trusts.
	Allow []string `json:"allow,omitempty"`
	// Client addresses or CIDR ranges denied (403), even when allow lists them.
	Deny []string `json:"deny,omitempty"`
	// Cross-origin resource sharing: preflights answered by the gateway, Access-Control-*
	// headers added for the allowed origins.
	CORS *CORS `json:"cors,omitempty"`
}

// JWTAuth verifies a JSON Web Token in the Authorization header (Bearer) or the access_token
// query parameter. A request without a valid token gets 401; one whose token is for another
// audience gets 403. The token is not forwarded. Give jwksURI with jwksBackend, or jwks.
type JWTAuth struct {
	// The token's iss must be this.
	Issuer string `json:"issuer,omitempty"`
	// The token's aud must include one of these. Without them, any audience is accepted.
	Audiences []string `json:"audiences,omitempty"`
	// URL of the issuer's JSON Web Key Set (http or https), fetched through jwksBackend.
	JWKSURI string `json:"jwksURI,omitempty"`
	// A backend defined in backends that serves jwksURI (with TLS for an https URL).
	JWKSBackend string `json:"jwksBackend,omitempty"`
	// How long fetched keys are used before they are fetched again. Default 10m.
	JWKSCacheDuration *Duration `json:"jwksCacheDuration,omitempty"`
	// The JSON Web Key Set itself, as JSON, instead of jwksURI.
	JWKS string `json:"jwks,omitempty"`
	// Request headers set from the token's claims: header name to claim name (a.b for a
	// nested claim). Clients cannot set these headers themselves.
	ClaimHeaders map[string]string `json:"claimHeaders,omitempty"`
	// Request header that carries the token's payload (base64url JSON) to the backend.
	PayloadHeader string `json:"payloadHeader,omitempty"`
	// Lets requests without a token through; a token that is present must still be valid.
	Optional bool `json:"optional,omitempty"`
}

// BasicAuth checks HTTP Basic credentials.
type BasicAuth struct {
	// htpasswd lines, "user:hash", with {SHA}, bcrypt ($2y$, htpasswd -B) or $apr1$ (htpasswd's
	// default) hashes.
	Users []string `json:"users"`
	// Realm of the WWW-Authenticate challenge. Default: the request's URL.
	Realm string `json:"realm,omitempty"`
}

// CORS lets browsers call the route from other origins.
type CORS struct {
	// Origins allowed, as "https://app.example"; "https://*.example.com" allows its subdomains
	// and "*" every origin.
	AllowOrigins []string `json:"allowOrigins"`
	// Methods a preflight allows, e.g. "GET, POST". Default: the method asked for.
	AllowMethods string `json:"allowMethods,omitempty"`
	// Request headers a preflight allows. Default: those asked for.
	AllowHeaders string `json:"allowHeaders,omitempty"`
	// Response headers scripts may read.
	ExposeHeaders string `json:"exposeHeaders,omitempty"`
	// Whether requests may carry cookies and credentials.
	AllowCredentials bool `json:"allowCredentials,omitempty"`
	// How long browsers may cache a preflight's answer.
	MaxAge *Duration `json:"maxAge,omitempty"`
}

// ExtAuth sends each request's method, Host and headers to an authorization service first. A
// 2xx answer lets the request through; any other answer is sent to the client instead; an
// unreachable or slow (5s) service answers 403.
type ExtAuth struct {
	// The backend the authorization service runs on.
	Backend string `json:"backend"`
	// Path and query the check is sent to. Default "/".
	Path string `json:"path,omitempty"`
	// Headers of the service's answer that replace the request's, e.g. [X-User].
	ResponseHeaders []string `json:"responseHeaders,omitempty"`
}

// Plugin is a proxy-wasm plugin: a .wasm module built with a proxy-wasm SDK (Go, Rust,
// AssemblyScript, C++), or one of Higress's plugins.
type Plugin struct {
	// Name of the plugin. Routes naming the same plugin with the same file and config share
	// its instances and their state.
	Name string `json:"name"`
	// The module, relative to the config file's directory unless absolute.
	File string `json:"file"`
	// Root context the plugin's streams run under (its root_id). Default empty.
	RootID string `json:"rootID,omitempty"`
	// What the plugin reads as its configuration, usually JSON.
	Config string `json:"config,omitempty"`
	// Let requests through without the plugin when it fails, instead of answering 503.
	FailOpen bool `json:"failOpen,omitempty"`
}

// Retries retry a failed request. Retries avoid the endpoints already tried, and the request
// body is kept for them up to the listener's buffer limit (a larger body is not retried).
type Retries struct {
	// Retries after the first try. Default 1.
	Attempts *uint32 `json:"attempts,omitempty"`
	// What to retry: 5xx, gateway-error (502, 503, 504), reset, connect-failure, retriable-4xx
	// (409), refused-stream. Default [connect-failure, refused-stream, reset, gateway-error].
	On []string `json:"on,omitempty"`
	// Further response statuses to retry, e.g. [429].
	StatusCodes []uint32 `json:"statusCodes,omitempty"`
	// Time for each try; the route's timeout still bounds all of them together.
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`
	// Wait between tries: a random time up to base, doubling each retry, at most max.
	Backoff *Backoff `json:"backoff,omitempty"`
}

// Backoff is the jittered exponential wait between retries.
type Backoff struct {
	// Default 25ms.
	Base *Duration `json:"base,omitempty"`
	// Default ten times base.
	Max *Duration `json:"max,omitempty"`
}

// Mirror copies requests to a backend; its answers are discarded and never delay the client.
// The copy's Host header gets "-shadow" appended.
type Mirror struct {
	// A backend defined in backends.
	Backend string `json:"backend"`
	// Share of requests copied, 0 to 100. Default 100.
	Percent *uint32 `json:"percent,omitempty"`
}

// Hash is one input of a request's hash. Give exactly one of header, cookie, sourceIP, query.
type Hash struct {
	// A request header.
	Header string `json:"header,omitempty"`
	// A cookie; with ttl, Nuncio sets it on clients that lack it, so they stay on one endpoint.
	Cookie *HashCookie `json:"cookie,omitempty"`
	// The client's IP address.
	SourceIP bool `json:"sourceIP,omitempty"`
	// A query parameter.
	Query string `json:"query,omitempty"`
}

// HashCookie hashes on a cookie.
type HashCookie struct {
	// Cookie name.
	Name string `json:"name"`
	// Lifetime of a cookie Nuncio generates for a client without one. Without it, no cookie is set.
	TTL *Duration `json:"ttl,omitempty"`
	// Path attribute of the generated cookie.
	Path string `json:"path,omitempty"`
}

// Fault injects faults into matching requests. Delay runs first, then abort.
type Fault struct {
	// Delays requests.
	Delay *FaultDelay `json:"delay,omitempty"`
	// Answers requests with an error instead of forwarding them.
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays a share of requests.
type FaultDelay struct {
	// How long.
	Duration Duration `json:"duration"`
	// Share of requests delayed, 0 to 100. Default 100.
	Percent *uint32 `json:"percent,omitempty"`
}

// FaultAbort answers a share of requests with an error. Give exactly one of status and grpcStatus.
type FaultAbort struct {
	// HTTP status, 200 to 599.
	Status int `json:"status,omitempty"`
	// gRPC status code (answered as HTTP 200 with grpc-status).
	GRPCStatus *uint32 `json:"grpcStatus,omitempty"`
	// Share of requests aborted, 0 to 100. Default 100.
	Percent *uint32 `json:"percent,omitempty"`
}

// Match selects requests. Every condition given must hold. At most one of prefix, path and
// regex may be given; without any of them, every path matches.
type Match struct {
	// Path starts with this, e.g. /api/. Must start with "/".
	Prefix string `json:"prefix,omitempty"`
	// Path equals this exactly (query excluded). Must start with "/".
	Path string `json:"path,omitempty"`
	// Path fully matches this RE2 regular expression (query excluded).
	Regex string `json:"regex,omitempty"`
	// Request headers that must have these exact values; an empty value only requires the header.
	Headers map[string]string `json:"headers,omitempty"`
	// Query parameters that must have these exact values; an empty value only requires the parameter.
	Query map[string]string `json:"query,omitempty"`
	// Request methods accepted, e.g. [GET, POST]. Default: any method.
	Methods []string `json:"methods,omitempty"`
}

// WeightedBackend is one backend of a traffic split.
type WeightedBackend struct {
	// A backend defined in backends.
	Name string `json:"name"`
	// Relative share of requests. Default 1; 0 sends none. Weights of a route must not all be 0.
	Weight *uint32 `json:"weight,omitempty"`
}

// Rewrite changes a request before it is forwarded. At most one of prefix and regex may be given.
type Rewrite struct {
	// Replaces the part of the path matched by match.prefix (or all of match.path) with this.
	Prefix string `json:"prefix,omitempty"`
	// Replaces every match of a regular expression in the path.
	Regex *RegexRewrite `json:"regex,omitempty"`
	// Replaces the Host header.
	Host string `json:"host,omitempty"`
}

// RegexRewrite replaces every match of pattern in the path with substitution.
type RegexRewrite struct {
	// RE2 regular expression.
	Pattern string `json:"pattern"`
	// Replacement; \1 to \9 insert capture groups.
	Substitution string `json:"substitution"`
}

// Redirect answers a request with a redirect to a URL built from the request's, with the given
// parts replaced.
type Redirect struct {
	// Switches the scheme to https. A request to a non-default port keeps it unless port is given.
	HTTPS bool `json:"https,omitempty"`
	// Replaces the host.
	Host string `json:"host,omitempty"`
	// Replaces the port.
	Port uint32 `json:"port,omitempty"`
	// Replaces the whole path (keeping the query unless stripQuery is set). Must start with "/".
	Path string `json:"path,omitempty"`
	// Status code: 301 (the default), 302, 303, 307 or 308.
	Code int `json:"code,omitempty"`
	// Drops the query string.
	StripQuery bool `json:"stripQuery,omitempty"`
}

// Respond answers a request directly without contacting a backend.
type Respond struct {
	// HTTP status code, 200 to 599.
	Status int `json:"status"`
	// Response body.
	Body string `json:"body,omitempty"`
}

// HeaderRules change request headers (before forwarding) and response headers (before replying).
type HeaderRules struct {
	// Changes to the request sent to the backend.
	Request *HeaderOps `json:"request,omitempty"`
	// Changes to the response sent to the client.
	Response *HeaderOps `json:"response,omitempty"`
}

// HeaderOps are header changes; removals apply first, then set, then add.
type HeaderOps struct {
	// Headers to set, replacing any existing values.
	Set map[string]string `json:"set,omitempty"`
	// Headers to add, keeping any existing values.
	Add map[string]string `json:"add,omitempty"`
	// Header names to remove.
	Remove []string `json:"remove,omitempty"`
}

// Backend is an upstream service: a set of endpoints and how to talk to them.
type Backend struct {
	// Unique name that routes refer to; also the Envoy cluster's name.
	Name string `json:"name"`
	// host:port endpoints, or {address, weight} objects. If every host is an IP address the
	// endpoints are static; otherwise names are resolved by DNS and re-resolved periodically.
	Endpoints []Endpoint `json:"endpoints"`
	// Protocol to the backend: "http1" (the default), "http2", or "auto" (the client's protocol).
	Protocol string `json:"protocol,omitempty"`
	// Time to establish a connection. Default 5s.
	ConnectTimeout *Duration `json:"connectTimeout,omitempty"`
	// Connects to the backend over TLS. Without ca or insecureSkipVerify, the system's roots verify it.
	TLS *BackendTLS `json:"tls,omitempty"`
	// How requests are spread over the endpoints. Default round robin.
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`
	// Probes every endpoint and sends requests only to those that pass.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// Takes endpoints that keep failing out of rotation for a while.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// Limits on connections, queued requests, requests and retries; beyond them requests get 503.
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
}

// LoadBalancer chooses how requests are spread over a backend's endpoints.
type LoadBalancer struct {
	// round_robin (the default, weighted), least_request (the less busy of two random
	// endpoints), random, ring_hash or maglev (consistent hashing on the route's hash, so the
	// same key keeps reaching the same endpoint).
	Policy string `json:"policy,omitempty"`
}

// HealthCheck probes every endpoint of a backend; set exactly one of http, tcp and grpc.
type HealthCheck struct {
	// An HTTP/1.1 GET that must answer one of the expected statuses.
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	// A TCP connect.
	TCP *TCPHealthCheck `json:"tcp,omitempty"`
	// The gRPC health protocol (grpc.health.v1.Health/Check).
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
	// Time between probes of an endpoint. Default 10s.
	Interval *Duration `json:"interval,omitempty"`
	// Time a probe may take. Default 1s.
	Timeout *Duration `json:"timeout,omitempty"`
	// Passing probes in a row that bring a failed endpoint back. Default 1.
	HealthyThreshold *uint32 `json:"healthyThreshold,omitempty"`
	// Failing probes in a row that take an endpoint out. Default 3.
	UnhealthyThreshold *uint32 `json:"unhealthyThreshold,omitempty"`
}

// HTTPHealthCheck is an HTTP health probe.
type HTTPHealthCheck struct {
	// Path requested, e.g. /healthz. Default /.
	Path string `json:"path,omitempty"`
	// Statuses that pass. Default [200].
	ExpectedStatuses []uint32 `json:"expectedStatuses,omitempty"`
}

// TCPHealthCheck passes when a connection opens.
type TCPHealthCheck struct{}

// GRPCHealthCheck asks the gRPC health service.
type GRPCHealthCheck struct {
	// Service name asked about; empty asks about the server as a whole.
	Service string `json:"service,omitempty"`
}

// OutlierDetection ejects endpoints that return errors in a row.
type OutlierDetection struct {
	// 5xx answers (or connection failures) in a row that eject an endpoint. Default 5.
	Consecutive5xx *uint32 `json:"consecutive5xx,omitempty"`
	// How often ejected endpoints are reconsidered. Default 10s.
	Interval *Duration `json:"interval,omitempty"`
	// First ejection time; each further ejection of the same endpoint lasts longer. Default 30s.
	BaseEjectionTime *Duration `json:"baseEjectionTime,omitempty"`
	// Most endpoints ejected at once, in percent; one can always be. Default 10.
	MaxEjectionPercent *uint32 `json:"maxEjectionPercent,omitempty"`
}

// CircuitBreaker caps what a backend is sent at once. Requests over a limit fail fast with
// 503 instead of piling up.
type CircuitBreaker struct {
	// Connections to all endpoints together. Default 1024.
	MaxConnections *uint32 `json:"maxConnections,omitempty"`
	// Requests waiting for a connection. Default 1024.
	MaxPendingRequests *uint32 `json:"maxPendingRequests,omitempty"`
	// Requests in flight. Default 1024.
	MaxRequests *uint32 `json:"maxRequests,omitempty"`
	// Retries in flight. Default 3.
	MaxRetries *uint32 `json:"maxRetries,omitempty"`
}

// Endpoint is one address of a backend. It is written either as "host:port" or as an object.
type Endpoint struct {
	// host:port, where host is an IP address or a DNS name.
	Address string `json:"address"`
	// Relative share of requests among the backend's endpoints. Default 1.
	Weight uint32 `json:"weight,omitempty"`
	// Failover order: requests go to priority 0 endpoints, and spill to priority 1 (then 2, …)
	// as those fail health checks or are ejected. Default 0.
	Priority uint32 `json:"priority,omitempty"`
}

// BackendTLS makes connections to a backend use TLS.
type BackendTLS struct {
	// Server name sent in SNI, and the name the backend's certificate must be valid for.
	// Default: the first endpoint's host, if it is a DNS name.
	SNI string `json:"sni,omitempty"`
	// PEM file of CA certificates that verify the backend; relative to the config file's directory.
	CA string `json:"ca,omitempty"`
	// PEM client certificate chain for mutual TLS; needs key.
	Cert string `json:"cert,omitempty"`
	// PEM private key of cert.
	Key string `json:"key,omitempty"`
	// Skips verifying the backend's certificate. For tests only; cannot be combined with ca.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}
