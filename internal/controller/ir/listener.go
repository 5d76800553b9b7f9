package ir

// Listener is one address the gateway listens on.
type Listener struct {
	// Name is unique; it is also the connection manager's stat prefix.
	Name string `json:"name"`
	// Address is an IP address ("0.0.0.0", "::").
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// MaxConnections caps the connections open at once (0: no limit).
	MaxConnections uint32 `json:"maxConnections,omitempty"`
	// Chains are tried in order; a chain with ServerNames matches those SNI names, one
	// without matches every connection. A listener with any server names or TLS reads the
	// ClientHello first.
	Chains []*FilterChain `json:"chains,omitempty"`
	// DefaultChain serves the connections no chain matched, such as TLS clients sending no
	// or an unknown SNI.
	DefaultChain *FilterChain `json:"defaultChain,omitempty"`
	// HTTP is the connection manager every chain without Passthrough runs.
	HTTP *HTTP `json:"http,omitempty"`
}

// FilterChain is how the listener serves one kind of connection.
type FilterChain struct {
	Name        string   `json:"name,omitempty"`
	ServerNames []string `json:"serverNames,omitempty"`
	// TLS terminates TLS with these settings; nil serves plain text.
	TLS *TLS `json:"tls,omitempty"`
	// Passthrough forwards the connection's bytes to this cluster, TLS untouched, instead of
	// running HTTP.
	Passthrough string `json:"passthrough,omitempty"`
}

// TLS is a filter chain's server side of TLS.
type TLS struct {
	// Secret names the certificate, sent over SDS. CertFile and KeyFile, read by the data
	// plane, are used instead when Secret is empty.
	Secret   string `json:"secret,omitempty"`
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
	// ALPN lists the protocols offered, in preference order.
	ALPN []string `json:"alpn,omitempty"`
	// MinVersion ("1.2") and Ciphers restrict the handshake ("" and nil: defaults).
	MinVersion string   `json:"minVersion,omitempty"`
	Ciphers    []string `json:"ciphers,omitempty"`
	// ClientCA names a secret with the CA bundle client certificates must chain to.
	ClientCA string `json:"clientCA,omitempty"`
	// RequireClientCert refuses clients without a certificate; without it a certificate is
	// validated when one is sent.
	RequireClientCert bool `json:"requireClientCert,omitempty"`
}

// Codec is the HTTP versions a connection manager accepts.
type Codec string

const (
	CodecHTTP1 Codec = "HTTP1" // HTTP/1.1 only
	CodecAuto  Codec = "AUTO"  // HTTP/1.1, h2 by ALPN and h2c with prior knowledge
)

// HTTP is a listener's HTTP connection manager and the virtual hosts it serves.
type HTTP struct {
	// RouteName names the route table. With RDS it is sent as its own resource; otherwise it
	// is part of the listener.
	RouteName string `json:"routeName"`
	RDS       bool   `json:"rds,omitempty"`
	Codec     Codec  `json:"codec"`
	// WebSocket upgrades are allowed.
	WebSocket bool `json:"webSocket,omitempty"`
	// UseRemoteAddress appends the peer to X-Forwarded-For and trusts it as the client.
	UseRemoteAddress bool `json:"useRemoteAddress,omitempty"`
	// RequestTimeout bounds a whole request, StreamIdleTimeout a stream without activity,
	// IdleTimeout a connection without streams (nil: the data plane's defaults).
	RequestTimeout    *Duration    `json:"requestTimeout,omitempty"`
	StreamIdleTimeout *Duration    `json:"streamIdleTimeout,omitempty"`
	IdleTimeout       *Duration    `json:"idleTimeout,omitempty"`
	AccessLog         []*AccessLog `json:"accessLog,omitempty"`
	// VirtualHosts are matched by the request's host.
	VirtualHosts []*VirtualHost `json:"virtualHosts,omitempty"`
}

// AccessLog writes a line per request.
type AccessLog struct {
	// Path is a file; "" and /dev/stdout are standard output, /dev/stderr standard error.
	Path string `json:"path,omitempty"`
	// Format is a text line in Envoy's command operators; JSON is a JSON object's fields
	// instead. Neither: the data plane's default format.
	Format string            `json:"format,omitempty"`
	JSON   map[string]string `json:"json,omitempty"`
}

// TLS reports whether the listener terminates TLS on some chain.
func (l *Listener) TLS() bool {
	if l.DefaultChain != nil && l.DefaultChain.TLS != nil {
		return true
	}
	for _, c := range l.Chains {
		if c.TLS != nil {
			return true
		}
	}
	return false
}

// Routes calls f for every route of the listener, in order.
func (l *Listener) Routes(f func(*Route)) {
	if l.HTTP == nil {
		return
	}
	for _, vh := range l.HTTP.VirtualHosts {
		for _, r := range vh.Routes {
			f(r)
		}
	}
}
