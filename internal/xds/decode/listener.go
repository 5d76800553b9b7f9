package decode

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's names for the listener-side extensions we accept.
const (
	tlsInspectorName    = "envoy.filters.listener.tls_inspector"
	connectionLimitName = "envoy.filters.network.connection_limit"
)

// defaultBufferLimit is Envoy's per_connection_buffer_limit_bytes default, for listeners and
// clusters alike.
const defaultBufferLimit = 1 << 20

var (
	_ = allow(&listenerv3.Listener{}, "name", "address", "filter_chains", "default_filter_chain",
		"per_connection_buffer_limit_bytes", "listener_filters")
	_ = allow(&listenerv3.ListenerFilter{}, "name", "typed_config")
	_ = allow(&tlsinspectorv3.TlsInspector{})
	_ = allow(&listenerv3.FilterChain{}, "name", "filter_chain_match", "filters", "transport_socket")
	_ = allow(&listenerv3.FilterChainMatch{}, "server_names", "transport_protocol",
		"application_protocols", "destination_port")
	_ = allow(&listenerv3.Filter{}, "name", "typed_config")
	_ = allow(&connlimitv3.ConnectionLimit{}, "stat_prefix", "max_connections")
	_ = allow(&corev3.TransportSocket{}, "name", "typed_config")
	_ = allow(&corev3.Address{}, "socket_address")
	_ = allow(&corev3.SocketAddress{}, "address", "port_value", "protocol")
)

// Listener decodes and validates one listener. reg resolves HTTP filter type URLs.
func Listener(l *listenerv3.Listener, reg *httpfilter.Registry) (*model.Listener, error) {
	if err := strict("", l); err != nil {
		return nil, err
	}
	fs := newFilterSet(reg)
	defer fs.logSkipped()
	return listener("", l, fs)
}

func listener(p path, l *listenerv3.Listener, fs *filterSet) (*model.Listener, error) {
	addr, err := socketAddress(p.field("address"), l.GetAddress(), "a listener binds to an IP address")
	if err != nil {
		return nil, err
	}
	out := &model.Listener{
		Name:             l.GetName(),
		Address:          addr,
		BufferLimitBytes: defaultBufferLimit,
		Source:           l,
	}
	if out.Name == "" {
		// Envoy invents a UUID; the address is as unique (duplicates are rejected) and says
		// more in logs and dumps.
		out.Name = net.JoinHostPort(addr.Host, strconv.Itoa(int(addr.Port)))
	}
	if v := l.GetPerConnectionBufferLimitBytes(); v != nil {
		out.BufferLimitBytes = v.GetValue()
	}
	for i, lf := range l.GetListenerFilters() {
		if err := listenerFilter(p.field("listener_filters").index(i), lf); err != nil {
			return nil, err
		}
	}
	if len(l.GetFilterChains()) == 0 && l.GetDefaultFilterChain() == nil {
		return nil, p.field("filter_chains").errorf("at least one filter chain (or default_filter_chain) required")
	}
	limits := map[uint64]bool{}
	seen := map[string]int{}
	for i, fc := range l.GetFilterChains() {
		fp := p.field("filter_chains").index(i)
		chain, limit, err := filterChain(fp, fc, fs)
		if err != nil {
			return nil, err
		}
		for _, k := range matchKeys(chain.Match) {
			if j, dup := seen[k]; dup {
				return nil, fp.field("filter_chain_match").errorf("same match as filter_chains[%d]", j)
			}
			seen[k] = i
		}
		limits[limit] = true
		out.FilterChains = append(out.FilterChains, chain)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		fp := p.field("default_filter_chain")
		if fc.GetFilterChainMatch() != nil {
			return nil, fp.field("filter_chain_match").errorf("not allowed on the default filter chain")
		}
		chain, limit, err := filterChain(fp, fc, fs)
		if err != nil {
			return nil, err
		}
		limits[limit] = true
		out.DefaultFilterChain = chain
	}
	if len(limits) > 1 {
		// The model counts connections per listener; per-chain counters would change what a
		// limit means when a connection's chain is only known after the TLS handshake starts.
		return nil, p.field("filter_chains").errorf("%s: max_connections must be the same on every filter chain", connectionLimitName)
	}
	for lim := range limits {
		out.ConnectionLimit = lim
	}
	return out, nil
}

// listenerFilter accepts the TLS inspector, which Nuncio always runs: it only reads the
// ClientHello that filter chain matching needs anyway.
func listenerFilter(p path, lf *listenerv3.ListenerFilter) error {
	if tc := lf.GetTypedConfig(); tc != nil {
		m, err := unpack(p.field("typed_config"), tc)
		if err != nil {
			return err
		}
		if _, ok := m.(*tlsinspectorv3.TlsInspector); !ok {
			return p.field("typed_config").errorf("listener filter %s not supported", tc.GetTypeUrl())
		}
		return nil
	}
	if lf.GetName() != tlsInspectorName {
		return p.field("name").errorf("listener filter %q not supported", lf.GetName())
	}
	return nil
}

// filterChain decodes one chain: an optional connection limit, then the HTTP connection
// manager as the terminal network filter.
func filterChain(p path, fc *listenerv3.FilterChain, fs *filterSet) (*model.FilterChain, uint64, error) {
	match, err := filterChainMatch(p.field("filter_chain_match"), fc.GetFilterChainMatch())
	if err != nil {
		return nil, 0, err
	}
	out := &model.FilterChain{Name: fc.GetName(), Match: match}
	var limit uint64
	filters := fc.GetFilters()
	if len(filters) == 0 {
		return nil, 0, p.field("filters").errorf("an %s filter required", hcmName)
	}
	for i, f := range filters {
		fp := p.field("filters").index(i)
		if f.GetTypedConfig() == nil {
			return nil, 0, fp.field("typed_config").errorf("required (filter %q)", f.GetName())
		}
		m, err := unpack(fp.field("typed_config"), f.GetTypedConfig())
		if err != nil {
			return nil, 0, err
		}
		last := i == len(filters)-1
		switch c := m.(type) {
		case *connlimitv3.ConnectionLimit:
			if last {
				return nil, 0, fp.errorf("%s must be followed by %s", connectionLimitName, hcmName)
			}
			if c.GetStatPrefix() == "" {
				return nil, 0, fp.field("typed_config.stat_prefix").errorf("required")
			}
			if c.GetMaxConnections() == nil || c.GetMaxConnections().GetValue() < 1 {
				return nil, 0, fp.field("typed_config.max_connections").errorf("must be at least 1")
			}
			limit = c.GetMaxConnections().GetValue()
		case *hcmv3.HttpConnectionManager:
			if !last {
				return nil, 0, fp.errorf("%s must be the last network filter", hcmName)
			}
			out.HCM, err = hcm(fp.field("typed_config"), c, fs)
			if err != nil {
				return nil, 0, err
			}
		default:
			return nil, 0, fp.field("typed_config").errorf("network filter %s not supported", f.GetTypedConfig().GetTypeUrl())
		}
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		tp := p.field("transport_socket")
		if ts.GetTypedConfig() == nil {
			return nil, 0, tp.field("typed_config").errorf("required")
		}
		m, err := unpack(tp.field("typed_config"), ts.GetTypedConfig())
		if err != nil {
			return nil, 0, err
		}
		dtc, ok := m.(*tlsv3.DownstreamTlsContext)
		if !ok {
			return nil, 0, tp.field("typed_config").errorf("transport socket %s not supported", ts.GetTypedConfig().GetTypeUrl())
		}
		if out.TLS, err = downstreamTLS(tp.field("typed_config"), dtc); err != nil {
			return nil, 0, err
		}
	}
	return out, limit, nil
}

func filterChainMatch(p path, m *listenerv3.FilterChainMatch) (model.FilterChainMatch, error) {
	var out model.FilterChainMatch
	if m == nil {
		return out, nil
	}
	if v := m.GetDestinationPort(); v != nil {
		if v.GetValue() < 1 || v.GetValue() > 65535 {
			return out, p.field("destination_port").errorf("%d out of range [1, 65535]", v.GetValue())
		}
		out.DestinationPort = v.GetValue()
	}
	for i, sn := range m.GetServerNames() {
		sp := p.field("server_names").index(i)
		sn = strings.ToLower(sn)
		name := strings.TrimPrefix(sn, "*.")
		// Envoy matches exact names and "*.suffix" only; "*w.example.com" would never match.
		if name == "" || strings.Contains(name, "*") || !validHostname(name) {
			return out, sp.errorf("%q: want a host name or *.suffix", m.GetServerNames()[i])
		}
		out.ServerNames = append(out.ServerNames, sn)
	}
	switch tp := m.GetTransportProtocol(); tp {
	case "", "tls", "raw_buffer":
		out.TransportProtocol = tp
	default:
		return out, p.field("transport_protocol").errorf("%q: want tls or raw_buffer", tp)
	}
	for i, ap := range m.GetApplicationProtocols() {
		if ap == "" {
			return out, p.field("application_protocols").index(i).errorf("empty")
		}
		out.ApplicationProtocols = append(out.ApplicationProtocols, ap)
	}
	return out, nil
}

// matchKeys expands a match into every (port, server name, transport, ALPN) combination it
// covers; two chains sharing one are ambiguous, and Envoy rejects them.
func matchKeys(m model.FilterChainMatch) []string {
	names := m.ServerNames
	if len(names) == 0 {
		names = []string{""}
	}
	alpns := m.ApplicationProtocols
	if len(alpns) == 0 {
		alpns = []string{""}
	}
	var keys []string
	for _, n := range names {
		for _, a := range alpns {
			keys = append(keys, strconv.Itoa(int(m.DestinationPort))+"|"+n+"|"+m.TransportProtocol+"|"+a)
		}
	}
	return keys
}

// socketAddress decodes an address. Listeners and STATIC clusters need IP literals (ipOnlyWhy
// says why, for the error); DNS clusters may name hosts (ipOnlyWhy is "").
func socketAddress(p path, a *corev3.Address, ipOnlyWhy string) (model.SocketAddress, error) {
	sa := a.GetSocketAddress()
	if sa == nil {
		return model.SocketAddress{}, p.field("socket_address").errorf("required")
	}
	sp := p.field("socket_address")
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return model.SocketAddress{}, sp.field("protocol").errorf("%s not supported", sa.GetProtocol())
	}
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok && sa.GetPortSpecifier() != nil {
		return model.SocketAddress{}, sp.errorf("named_port not supported")
	}
	var pv uint32
	if ok {
		pv = port.PortValue
	}
	if pv > 65535 {
		return model.SocketAddress{}, sp.field("port_value").errorf("%d out of range [0, 65535]", pv)
	}
	host := sa.GetAddress()
	if ip, err := netip.ParseAddr(host); err == nil {
		return model.SocketAddress{Host: ip.String(), Port: pv}, nil
	}
	if ipOnlyWhy != "" {
		return model.SocketAddress{}, sp.field("address").errorf("%q is not an IP address (%s)", host, ipOnlyWhy)
	}
	if !validHostname(host) {
		return model.SocketAddress{}, sp.field("address").errorf("%q is neither an IP address nor a host name", host)
	}
	return model.SocketAddress{Host: strings.ToLower(host), Port: pv}, nil
}

// validHostname accepts DNS names (letters, digits, '-', '_' and dots; labels of 1-63).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				return false
			}
		}
	}
	return true
}
