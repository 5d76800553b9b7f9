package ir

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

// CustomErrors sends upstream responses with these codes to a backend's error page.
type CustomErrors struct {
	Codes   []uint32 `json:"codes"`
	Cluster string   `json:"cluster"`
}
