package simple

import (
	"strconv"
	"strings"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

func (t *translator) listener(l *v1alpha1.Listener) *ir.Listener {
	host, port := hostPort(l.Address)
	out := &ir.Listener{Name: l.Name, Address: host, Port: port, MaxConnections: l.MaxConnections, HTTP: t.http(l)}
	if l.TLS == nil {
		out.Chains = []*ir.FilterChain{{}}
		return out
	}
	// Each certificate with hosts gets a chain matching its SNI names. The certificate without
	// hosts, or else the first, is the default chain, so that clients sending no or unknown SNI
	// still get a certificate rather than a closed connection.
	for i, c := range l.TLS.Certificates {
		chain := &ir.FilterChain{Name: l.Name + "-tls-" + strconv.Itoa(i), TLS: t.tls(l, c)}
		if len(c.Hosts) == 0 {
			out.DefaultChain = chain
			continue
		}
		for _, h := range c.Hosts {
			chain.ServerNames = append(chain.ServerNames, strings.ToLower(h))
		}
		out.Chains = append(out.Chains, chain)
	}
	if out.DefaultChain == nil {
		out.DefaultChain = &ir.FilterChain{Name: l.Name + "-tls-default", TLS: t.tls(l, l.TLS.Certificates[0])}
	}
	return out
}

func (t *translator) tls(l *v1alpha1.Listener, c v1alpha1.Certificate) *ir.TLS {
	out := &ir.TLS{CertFile: t.file(c.Cert), KeyFile: t.file(c.Key), ALPN: []string{"http/1.1"}, MinVersion: l.TLS.MinVersion}
	if l.HTTP2 {
		out.ALPN = []string{"h2", "http/1.1"}
	}
	return out
}

func (t *translator) http(l *v1alpha1.Listener) *ir.HTTP {
	h := &ir.HTTP{RouteName: l.Name, Codec: ir.CodecHTTP1, WebSocket: l.WebSocket, VirtualHosts: t.virtualHosts(l)}
	if l.HTTP2 {
		// AUTO also accepts h2c with prior knowledge, so it is only right when HTTP/2 is wanted.
		h.Codec = ir.CodecAuto
	}
	if to := l.Timeouts; to != nil {
		h.RequestTimeout = duration(to.Request)
		h.StreamIdleTimeout = duration(to.StreamIdle)
		h.IdleTimeout = duration(to.Idle)
	}
	if a := l.AccessLog; a != nil {
		h.AccessLog = []*ir.AccessLog{{Path: t.file(a.Path), Format: a.Format, JSON: a.JSON}}
	}
	return h
}
