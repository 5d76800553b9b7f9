package ir

// Policy is what a route adds to its action. The request's way through (rewrites, timeouts,
// retries, hashing, mirrors) applies to forwarding routes; headers and filter policies to
// every route.
type Policy struct {
	Rewrite *Rewrite `json:"rewrite,omitempty"`
	// Timeout bounds the whole request (0: none); IdleTimeout a request without activity.
	Timeout     *Duration `json:"timeout,omitempty"`
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
	Retry       *Retry    `json:"retry,omitempty"`
	Hash        []Hash    `json:"hash,omitempty"`
	Mirrors     []Mirror  `json:"mirrors,omitempty"`
	// RequestHeaders and ResponseHeaders are set or appended on the way through, after the
	// Remove lists are removed.
	RequestHeaders        []Header `json:"requestHeaders,omitempty"`
	ResponseHeaders       []Header `json:"responseHeaders,omitempty"`
	RemoveRequestHeaders  []string `json:"removeRequestHeaders,omitempty"`
	RemoveResponseHeaders []string `json:"removeResponseHeaders,omitempty"`
	// HTTPSRedirect makes the route redirect to https (308) on listeners without TLS.
	HTTPSRedirect bool `json:"httpsRedirect,omitempty"`
	// WebSocket upgrades are allowed on this route.
	WebSocket bool `json:"webSocket,omitempty"`
	// DisableAccessLog leaves the route's requests out of the access log.
	DisableAccessLog bool `json:"disableAccessLog,omitempty"`
	// BufferLimit bounds the request body kept for retries and mirrors.
	BufferLimit uint32 `json:"bufferLimit,omitempty"`

	// Filter policies, each encoded by its own file in package xdsgen.
	Fault        *Fault        `json:"fault,omitempty"`
	CORS         *CORS         `json:"cors,omitempty"`
	RateLimit    *RateLimit    `json:"rateLimit,omitempty"`
	IPFilter     *IPFilter     `json:"ipFilter,omitempty"`
	BasicAuth    *BasicAuth    `json:"basicAuth,omitempty"`
	ExtAuth      *ExtAuth      `json:"extAuth,omitempty"`
	JWT          *JWT          `json:"jwt,omitempty"`
	CustomErrors *CustomErrors `json:"customErrors,omitempty"`
	// MaxRequestBytes bounds the request body (the buffer filter).
	MaxRequestBytes uint32 `json:"maxRequestBytes,omitempty"`
	// Plugins are proxy-wasm plugins run on the route's requests, in order.
	Plugins []Plugin `json:"plugins,omitempty"`
}

// Plugin is a proxy-wasm plugin (envoy.filters.http.wasm). A name is one filter in a
// listener's chain; each route that runs it gives it its own code and configuration.
type Plugin struct {
	Name string `json:"name"`
	// File is the module's path on the data plane.
	File   string `json:"file"`
	RootID string `json:"rootID,omitempty"`
	// Config is what the plugin's proxy_on_configure reads (usually JSON).
	Config string `json:"config,omitempty"`
	// FailOpen lets requests pass when the plugin fails; else they get 503.
	FailOpen bool `json:"failOpen,omitempty"`
}

// Fault injects delays and aborts into a share of a route's requests.
type Fault struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay holds requests for Duration before forwarding them.
type FaultDelay struct {
	Duration Duration `json:"duration"`
	Percent  *uint32  `json:"percent,omitempty"` // nil: all
}

// FaultAbort answers with Status, or with the gRPC status GRPCStatus when set.
type FaultAbort struct {
	Status     int     `json:"status,omitempty"`
	GRPCStatus *uint32 `json:"grpcStatus,omitempty"`
	Percent    *uint32 `json:"percent,omitempty"` // nil: all
}

// CORS answers preflights and adds the CORS headers for the allowed origins.
type CORS struct {
	AllowOrigins     []string `json:"allowOrigins"`
	AllowMethods     string   `json:"allowMethods"`
	AllowHeaders     string   `json:"allowHeaders"`
	ExposeHeaders    string   `json:"exposeHeaders,omitempty"`
	AllowCredentials bool     `json:"allowCredentials"`
	MaxAge           string   `json:"maxAge"`
}

// RateLimit limits requests per client address; Burst is the token bucket size.
type RateLimit struct {
	Tokens   uint32   `json:"tokens"`
	Interval Duration `json:"interval"`
	Burst    uint32   `json:"burst"`
	// Connections limits concurrent requests per client.
	Connections uint32 `json:"connections,omitempty"`
	// Exempt client ranges.
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

// ExtAuth first sends each request to an authorization service.
type ExtAuth struct {
	Cluster         string   `json:"cluster"`
	URL             string   `json:"url"`
	Method          string   `json:"method,omitempty"`
	ResponseHeaders []string `json:"responseHeaders,omitempty"`
	SignIn          string   `json:"signIn,omitempty"`
	RequestRedirect string   `json:"requestRedirect,omitempty"`
}

// JWT requires a JSON Web Token verified with the keys of a JWKS, fetched from JWKSURI
// through JWKSCluster, or given inline (JWKS). Optional lets requests without a token through.
type JWT struct {
	Issuer        string      `json:"issuer,omitempty"`
	Audiences     []string    `json:"audiences,omitempty"`
	JWKSURI       string      `json:"jwksURI,omitempty"`
	JWKSCluster   string      `json:"jwksCluster,omitempty"`
	CacheDuration *Duration   `json:"cacheDuration,omitempty"`
	JWKS          string      `json:"jwks,omitempty"`
	ClaimHeaders  []JWTHeader `json:"claimHeaders,omitempty"`
	PayloadHeader string      `json:"payloadHeader,omitempty"`
	Optional      bool        `json:"optional,omitempty"`
}

// JWTHeader is a request header set from a claim (Claim: dotted for nested claims).
type JWTHeader struct {
	Header string `json:"header"`
	Claim  string `json:"claim"`
}

// CustomErrors sends upstream responses with these codes to a backend's error page.
type CustomErrors struct {
	Codes   []uint32 `json:"codes"`
	Cluster string   `json:"cluster"`
}
