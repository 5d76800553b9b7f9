package ir

// VirtualHost is one host name (or the catch-all "*") with its routes, in match order.
type VirtualHost struct {
	// Name is unique within its listener.
	Name string `json:"name"`
	// Domains are the Host header values served, including aliases and "*.suffix" wildcards.
	Domains []string `json:"domains"`
	// Routes are in match order: the first route matching a request serves it.
	Routes []*Route `json:"routes,omitempty"`
}

// PathKind is how a route's path matches.
type PathKind string

const (
	PathExact  PathKind = "Exact"
	PathPrefix PathKind = "Prefix" // by path segment: /foo matches /foo and /foo/bar, not /foobar
	// PathStringPrefix is a plain string prefix (/foo matches /foobar).
	PathStringPrefix PathKind = "StringPrefix"
	// PathRegex is an RE2 expression the whole path must match.
	PathRegex PathKind = "Regex"
	// PathRegexPrefix is an RE2 expression a prefix of the path must match (nginx's
	// location ~).
	PathRegexPrefix PathKind = "RegexPrefix"
	// PathAny matches every path.
	PathAny PathKind = "Any"
)

// Route is one match and what to do with the requests it selects.
type Route struct {
	// Name says where the route comes from; when set it is unique within its virtual host.
	Name string `json:"name,omitempty"`
	// Source is the object ("cluster/namespace/name") the route comes from, for Events.
	Source string `json:"source,omitempty"`
	Match  Match  `json:"match"`
	// Exactly one of Backends, Redirect and Respond is set. One backend takes all the
	// traffic; several share it by weight.
	Backends []WeightedBackend `json:"backends,omitempty"`
	Redirect *Redirect         `json:"redirect,omitempty"`
	Respond  *Respond          `json:"respond,omitempty"`
	Policy   `json:",inline"`
}

// Forwards reports whether the route sends requests to backends.
func (r *Route) Forwards() bool { return len(r.Backends) > 0 }

// Match selects requests.
type Match struct {
	Kind PathKind `json:"kind"`
	Path string   `json:"path,omitempty"`
	// CaseInsensitive regexes (Regex and RegexPrefix).
	CaseInsensitive bool `json:"caseInsensitive,omitempty"`
	// Headers and Query must all match. The method is the ":method" header.
	Headers []HeaderMatch `json:"headers,omitempty"`
	Query   []QueryMatch  `json:"query,omitempty"`
}

// HeaderMatch matches one header; exactly one of Exact, Regex and Present is used.
type HeaderMatch struct {
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
	Invert  bool   `json:"invert,omitempty"`
}

// QueryMatch matches one query parameter: its value exactly, or its presence.
type QueryMatch struct {
	Name    string `json:"name"`
	Exact   string `json:"exact,omitempty"`
	Present bool   `json:"present,omitempty"`
}

// WeightedBackend is a cluster and its share of the route's traffic.
type WeightedBackend struct {
	Cluster string `json:"cluster"`
	Weight  uint32 `json:"weight"`
}

// Redirect answers with a redirect. Empty fields keep the request's value.
type Redirect struct {
	// HTTPS switches the scheme to https (and the port to 443 unless Port is set); Scheme
	// sets another.
	HTTPS  bool   `json:"https,omitempty"`
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Port   uint32 `json:"port,omitempty"`
	Path   string `json:"path,omitempty"`
	// PrefixRewrite replaces the matched prefix (from-to-www keeps the path this way).
	PrefixRewrite string `json:"prefixRewrite,omitempty"`
	// Code is 301, 302, 303, 307 or 308; 0 is 301.
	Code       int  `json:"code,omitempty"`
	StripQuery bool `json:"stripQuery,omitempty"`
}

// Respond answers directly.
type Respond struct {
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"`
}

// Rewrite changes the request on its way upstream.
type Rewrite struct {
	// Prefix replaces the path prefix the route matched.
	Prefix string `json:"prefix,omitempty"`
	// Pattern: the parts of the path matching it are replaced with Substitution (\1 for
	// groups).
	Pattern      string `json:"pattern,omitempty"`
	Substitution string `json:"substitution,omitempty"`
	// Host replaces the Host header.
	Host string `json:"host,omitempty"`
}

// Retry retries failed requests on other endpoints.
type Retry struct {
	On          []string  `json:"on"` // Envoy retry_on tokens
	StatusCodes []uint32  `json:"statusCodes,omitempty"`
	NumRetries  uint32    `json:"numRetries"`
	PerTry      *Duration `json:"perTryTimeout,omitempty"`
	// HostPicks is how many endpoints are tried to find one not tried yet.
	HostPicks int64 `json:"hostPicks,omitempty"`
	// BackoffBase and BackoffMax space the retries (nil: the data plane's defaults).
	BackoffBase *Duration `json:"backoffBase,omitempty"`
	BackoffMax  *Duration `json:"backoffMax,omitempty"`
}

// Hash is one hash policy entry; one field is set.
type Hash struct {
	Header   string      `json:"header,omitempty"`
	Query    string      `json:"query,omitempty"`
	SourceIP bool        `json:"sourceIP,omitempty"`
	Cookie   *HashCookie `json:"cookie,omitempty"`
}

// HashCookie is cookie affinity: the gateway sets the cookie when the request has none.
type HashCookie struct {
	Name string    `json:"name"`
	Path string    `json:"path,omitempty"`
	TTL  *Duration `json:"ttl,omitempty"`
}

// Mirror copies requests to a cluster, answers ignored.
type Mirror struct {
	Cluster string `json:"cluster"`
	// Percent of the requests mirrored (nil: all).
	Percent *uint32 `json:"percent,omitempty"`
}

// Header is a name and value; Append adds a value instead of replacing the header.
type Header struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Append bool   `json:"append,omitempty"`
}
