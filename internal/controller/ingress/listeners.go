package ingress

import (
	"slices"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// Names of the gateway's listeners and their route tables.
const (
	httpListener  = "http"
	httpsListener = "https"
)

// nginxHostPicks is how many endpoints a retry tries to find one not tried yet: nginx's next
// upstream is another server.
const nginxHostPicks = 3

// hostTLS is a host's certificate and client-certificate requirements.
type hostTLS struct {
	Secret string
	// ClientCA names a secret with the CA bundle client certificates must chain to.
	ClientCA string
	// RequireClientCert is auth-tls-verify-client "on"; "optional" validates a certificate
	// when one is sent.
	RequireClientCert bool
	// Ciphers restricts the cipher suites (ssl-ciphers).
	Ciphers []string
}

// passthroughHost forwards TLS for SNI host to a cluster untouched (ssl-passthrough).
type passthroughHost struct {
	Host    string
	Cluster string
}

// listeners are the gateway's two listeners, as ingress-nginx's server blocks: plain HTTP on
// the HTTP port serving every host, and, when there is a certificate or a passthrough host,
// TLS on the HTTPS port with a chain per host with its own certificate (matched by SNI), a
// chain per passthrough host, and the default certificate's chain for other names. Both serve
// every host; HTTPSRedirect routes redirect on the plain one.
func (s *state) listeners(hosts []*hostState, passthru []*passthroughHost, defaultCert string) []*ir.Listener {
	vhosts := make([]*ir.VirtualHost, len(hosts))
	for i, h := range hosts {
		vhosts[i] = h.vh
	}
	var accessLog []*ir.AccessLog
	if s.global.accessLog {
		accessLog = []*ir.AccessLog{{}}
	}
	http := func(name string) *ir.HTTP {
		return &ir.HTTP{
			RouteName: name, RDS: true, Codec: ir.CodecAuto, WebSocket: true,
			// Clients' X-Forwarded-For is kept and the peer appended, as nginx's default
			// proxy_add_x_forwarded_for.
			UseRemoteAddress: true,
			AccessLog:        accessLog,
			VirtualHosts:     vhosts,
		}
	}
	out := []*ir.Listener{{
		Name: httpListener, Address: "0.0.0.0", Port: s.opts.HTTPPort,
		Chains: []*ir.FilterChain{{}},
		HTTP:   http(httpListener),
	}}
	if defaultCert == "" && len(passthru) == 0 {
		return out
	}
	alpn := []string{"h2", "http/1.1"}
	l := &ir.Listener{Name: httpsListener, Address: "0.0.0.0", Port: s.opts.HTTPSPort, HTTP: http(httpsListener)}
	for _, h := range hosts {
		if h.tls == nil || h.vh.Name == "*" {
			continue
		}
		l.Chains = append(l.Chains, &ir.FilterChain{
			Name: h.vh.Name, ServerNames: slices.Clone(h.vh.Domains),
			TLS: &ir.TLS{Secret: h.tls.Secret, ALPN: alpn, ClientCA: h.tls.ClientCA,
				RequireClientCert: h.tls.RequireClientCert, Ciphers: h.tls.Ciphers},
		})
	}
	for _, p := range passthru {
		l.Chains = append(l.Chains, &ir.FilterChain{Name: "passthrough/" + p.Host, ServerNames: []string{p.Host}, Passthrough: p.Cluster})
	}
	if defaultCert != "" {
		l.DefaultChain = &ir.FilterChain{Name: "default", TLS: &ir.TLS{Secret: defaultCert, ALPN: alpn}}
	}
	return append(out, l)
}

// localityWeight is every locality's load balancing weight: gRPC's xDS client ignores
// localities without one; Envoy reads it only with locality-weighted balancing.
const localityWeight = 1
