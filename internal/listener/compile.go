package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Compiled is one listener's runtime config: the model it came from, each filter chain's
// handler and tls.Config, and the match tree. It is immutable once built, so a connection can
// keep the Compiled it was accepted with while a config update installs a new one.
type Compiled struct {
	Model *model.Listener

	addr     netip.AddrPort // configured address; port 0 asks for any free port
	network  string         // "tcp4" or "tcp6"
	matcher  matcher
	all      []*chain // FilterChains then DefaultFilterChain
	def      *chain
	inspect  bool // selection or serving depends on the client's first bytes
	recordCH bool // a TLS connection may select a chain that does not terminate TLS
	// sniff starts every TLS handshake; its GetConfigForClient picks the chain from the
	// ClientHello and hands over that chain's tls.Config.
	sniff *tls.Config
}

// chain is one compiled filter chain.
type chain struct {
	model   *model.FilterChain
	handler ChainHandler
	tls     *tls.Config // nil: the chain does not terminate TLS
}

// Default ALPN lists for HTTP chains whose TLS context names none, matching what Envoy
// advertises for the HTTP connection manager's codec.
var (
	alpnAuto  = []string{"h2", "http/1.1"}
	alpnHTTP1 = []string{"http/1.1"}
	alpnHTTP2 = []string{"h2"}
)

// cipherSuitesTLS12 are the TLS 1.2 suites offered when a chain names none: ECDHE for forward
// secrecy and AEAD only (no CBC, no RSA key exchange), as Mozilla's "intermediate" profile.
// TLS 1.3 suites are not configurable in crypto/tls and are all AEAD.
var cipherSuitesTLS12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Compile builds the runtime config of l: it parses certificates into tls.Configs, asks handler
// for each filter chain's ChainHandler (the default filter chain included) and builds the match
// tree. Errors name the listener and the filter chain.
func Compile(l *model.Listener, handler func(fc *model.FilterChain) (ChainHandler, error)) (*Compiled, error) {
	if l == nil {
		return nil, errors.New("listener: nil listener")
	}
	if handler == nil {
		return nil, fmt.Errorf("listener %q: nil handler constructor", l.Name)
	}
	ip, err := netip.ParseAddr(l.Address.Host)
	if err != nil {
		return nil, fmt.Errorf("listener %q: address %q: not an IP literal", l.Name, l.Address.Host)
	}
	if l.Address.Port > 65535 {
		return nil, fmt.Errorf("listener %q: port %d out of range", l.Name, l.Address.Port)
	}
	ip = ip.Unmap()
	cc := &Compiled{Model: l, addr: netip.AddrPortFrom(ip, uint16(l.Address.Port)), network: "tcp6"}
	if ip.Is4() {
		cc.network = "tcp4"
	}
	if len(l.FilterChains) == 0 && l.DefaultFilterChain == nil {
		return nil, fmt.Errorf("listener %q: no filter chains", l.Name)
	}

	build := func(fc *model.FilterChain) (*chain, error) {
		if fc == nil {
			return nil, errors.New("nil filter chain")
		}
		ch := &chain{model: fc}
		if fc.TLS != nil {
			if ch.tls, err = serverTLSConfig(fc); err != nil {
				return nil, err
			}
		}
		if ch.handler, err = handler(fc); err != nil {
			return nil, err
		}
		if ch.handler == nil {
			return nil, errors.New("no handler")
		}
		return ch, nil
	}
	for i, fc := range l.FilterChains {
		ch, err := build(fc)
		if err == nil {
			err = cc.matcher.add(ch)
		}
		if err != nil {
			return nil, fmt.Errorf("listener %q: filter chain %q (#%d): %w", l.Name, chainName(fc), i, err)
		}
		cc.all = append(cc.all, ch)
	}
	if l.DefaultFilterChain != nil {
		ch, err := build(l.DefaultFilterChain)
		if err != nil {
			return nil, fmt.Errorf("listener %q: default filter chain: %w", l.Name, err)
		}
		cc.def = ch
		cc.all = append(cc.all, ch)
	}

	cc.inspect = cc.needsInspection()
	for _, ch := range cc.all {
		if ch.tls == nil && ch.model.Match.TransportProtocol != TransportRaw {
			cc.recordCH = true
		}
	}
	cc.sniff = &tls.Config{GetConfigForClient: cc.configForClient}
	return cc, nil
}

func chainName(fc *model.FilterChain) string {
	if fc == nil {
		return ""
	}
	return fc.Name
}

// serverTLSConfig builds a filter chain's TLS termination config. Each chain gets its own
// tls.Config and so its own session ticket keys: a ticket issued on one chain cannot resume a
// session on another chain with different client-certificate requirements (crypto/tls does not
// re-verify the client certificate on resumption). The price is that tickets do not survive a
// config update; clients then do a full handshake.
func serverTLSConfig(fc *model.FilterChain) (*tls.Config, error) {
	t := fc.TLS
	if len(t.Certificates) == 0 {
		return nil, errors.New("tls: no certificates")
	}
	cfg := &tls.Config{
		MinVersion:   t.Params.MinVersion,
		MaxVersion:   t.Params.MaxVersion,
		CipherSuites: t.Params.CipherSuites,
		NextProtos:   t.ALPN,
		// Several certificates are chosen per handshake by crypto/tls itself: the first
		// whose names cover the SNI and whose key the client supports (SupportsCertificate),
		// else the first one, which is Envoy's behaviour for a chain's certificate list.
		Certificates: make([]tls.Certificate, 0, len(t.Certificates)),
	}
	if cfg.MinVersion == 0 {
		// TLS 1.0 and 1.1 are deprecated (RFC 8996) and Envoy's downstream default is 1.2; an
		// explicit lower minimum is honoured so Envoy configs keep their meaning.
		cfg.MinVersion = tls.VersionTLS12
	}
	if cfg.MaxVersion != 0 && cfg.MaxVersion < cfg.MinVersion {
		return nil, fmt.Errorf("tls: maximum version %#04x below minimum %#04x", cfg.MaxVersion, cfg.MinVersion)
	}
	if len(cfg.CipherSuites) == 0 {
		// The server's preference decides the suite: crypto/tls always orders by its own
		// list (PreferServerCipherSuites is ignored since Go 1.18), putting AES-GCM first
		// only where the CPU accelerates it.
		cfg.CipherSuites = cipherSuitesTLS12
	}
	if len(cfg.NextProtos) == 0 && fc.HCM != nil {
		switch fc.HCM.Codec {
		case model.CodecHTTP1:
			cfg.NextProtos = alpnHTTP1
		case model.CodecHTTP2:
			cfg.NextProtos = alpnHTTP2
		default:
			cfg.NextProtos = alpnAuto
		}
	}
	for i, c := range t.Certificates {
		kp, err := tls.X509KeyPair(c.CertChainPEM, c.PrivateKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate #%d%s: %w", i, certSource(c), err)
		}
		cfg.Certificates = append(cfg.Certificates, kp)
	}
	switch {
	case len(t.ClientCAPEM) > 0:
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(t.ClientCAPEM) {
			return nil, errors.New("tls: client CA: no PEM certificates")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if t.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case t.RequireClientCert:
		// Without a CA there is nothing to verify against; still insist on a certificate so
		// the handler can authorise by it.
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	return cfg, nil
}

func certSource(c model.Certificate) string {
	if c.CertFile != "" {
		return " (" + c.CertFile + ")"
	}
	return ""
}

// selectChain applies the match tree and then the default filter chain.
func (cc *Compiled) selectChain(port uint32, sni, transport string, alpn []string) *chain {
	if ch := cc.matcher.match(port, lowerASCII(sni), transport, alpn); ch != nil {
		return ch
	}
	return cc.def
}

var (
	errNoChain     = errors.New("listener: no filter chain matched")
	errPassthrough = errors.New("listener: filter chain does not terminate TLS")
	errNotOurConn  = errors.New("listener: handshake on a foreign connection")
)

// configForClient is the tls_inspector: it runs once the ClientHello is read, selects the chain
// from SNI and ALPN, and continues the handshake with that chain's config. hello.Conn is the
// *conn the handshake runs on, which carries the per-connection state, so the shared
// tls.Config needs no per-connection closure.
func (cc *Compiled) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	c, ok := hello.Conn.(*conn)
	if !ok {
		return nil, errNotOurConn
	}
	c.selected = true
	c.sni = hello.ServerName
	ch := cc.selectChain(c.localPort(), hello.ServerName, TransportTLS, hello.SupportedProtos)
	c.chain = ch
	switch {
	case ch == nil:
		return nil, errNoChain
	case ch.tls == nil:
		return nil, errPassthrough
	}
	c.muteWrites = false
	return ch.tls, nil
}
