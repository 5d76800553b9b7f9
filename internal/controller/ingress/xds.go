package ingress

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
)

// Names of the resources the gateway's listeners use.
const (
	httpListener  = "http"
	httpsListener = "https"
	httpRoutes    = "http"
	httpsRoutes   = "https"

	hcmName          = "envoy.filters.network.http_connection_manager"
	routerName       = "envoy.filters.http.router"
	tlsInspectorName = "envoy.filters.listener.tls_inspector"
	tlsSocketName    = "envoy.transport_sockets.tls"
	httpOptionsKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	previousHosts    = "envoy.retry_host_predicates.previous_hosts"
	stdoutLogName    = "envoy.access_loggers.stdout"
)

const defaultConnectTimeout = 5 * time.Second

// previousHostsConfig is shared by every retry policy: resources are never modified once built.
var previousHostsConfig = typed(&previoushostsv3.PreviousHostsPredicate{})

// ToXDS encodes an IR config as the xDS resources every gateway replica is sent: listeners on
// the HTTP and HTTPS ports whose routes come over RDS, EDS clusters for Service endpoints with
// their ClusterLoadAssignments, DNS clusters for names, and the certificates as SDS secrets.
func ToXDS(c *ir.Config) (xdsgen.Resources, error) {
	return new(Encoder).ToXDS(c)
}

// Encoder is ToXDS for successive configs of one controller. It keeps the resources it built
// per virtual host, cluster and secret with the IR they came from, and reuses them where the
// IR is unchanged: their messages then stay the same, so validation skips them (see
// xdsgen.Generator.Validate) and the xDS server neither hashes nor pushes them again. A
// cluster's endpoints are compared apart from the rest of it, so an endpoint change replaces
// the ClusterLoadAssignment only. It is not safe for concurrent use.
type Encoder struct {
	hosts    map[string]*encodedHost
	clusters map[string]*encodedCluster
	secrets  map[string]*encodedSecret
	valid    xdsgen.Generator
}

type encodedHost struct {
	in          *ir.VirtualHost
	http, https *routev3.VirtualHost // built when first needed
}

type encodedCluster struct {
	in      *ir.Cluster
	cluster *clusterv3.Cluster
	cla     *endpointv3.ClusterLoadAssignment
}

type encodedSecret struct {
	in  *ir.Secret
	out *tlsv3.Secret
}

// ToXDS is the package's ToXDS, reusing the previous call's resources where the IR is the same.
func (e *Encoder) ToXDS(c *ir.Config) (xdsgen.Resources, error) {
	if err := c.Validate(); err != nil {
		return xdsgen.Resources{}, err
	}
	g := &xdsGen{cfg: c}
	hosts := make(map[string]*encodedHost, len(c.VirtualHosts))
	for _, vh := range c.VirtualHosts {
		h := e.hosts[vh.Name]
		if h == nil || !reflect.DeepEqual(h.in, vh) {
			h = &encodedHost{in: vh}
		}
		hosts[vh.Name] = h
	}
	g.host = func(vh *ir.VirtualHost, https bool) *routev3.VirtualHost {
		h := hosts[vh.Name]
		p := &h.http
		if https {
			p = &h.https
		}
		if *p == nil {
			*p = g.virtualHost(vh, https)
		}
		return *p
	}
	var r xdsgen.Resources
	r.Routes = []*routev3.RouteConfiguration{g.routeConfig(httpRoutes, false)}
	r.Listeners = append(r.Listeners, g.httpListener())
	if l := g.httpsListener(); l != nil {
		r.Listeners = append(r.Listeners, l)
		r.Routes = append(r.Routes, g.routeConfig(httpsRoutes, true))
	}
	clusters := make(map[string]*encodedCluster, len(c.Clusters))
	for _, cl := range c.Clusters {
		prev := e.clusters[cl.Name]
		sameRest := prev != nil && sameExceptEndpoints(prev.in, cl)
		out := &encodedCluster{in: cl}
		switch {
		case sameRest && reflect.DeepEqual(prev.in.Localities, cl.Localities):
			out.cluster, out.cla = prev.cluster, prev.cla
		case sameRest && cl.Kind != ir.ClusterDNS:
			// Only the endpoints changed, and they are not part of an EDS cluster.
			_, out.cla = g.cluster(cl)
			out.cluster = prev.cluster
		default:
			out.cluster, out.cla = g.cluster(cl)
		}
		clusters[cl.Name] = out
		r.Clusters = append(r.Clusters, out.cluster)
		if out.cla != nil {
			r.Endpoints = append(r.Endpoints, out.cla)
		}
	}
	secrets := make(map[string]*encodedSecret, len(c.Secrets))
	for _, sec := range c.Secrets {
		out := e.secrets[sec.Name]
		if out == nil || !reflect.DeepEqual(out.in, sec) {
			out = &encodedSecret{in: sec, out: secret(sec)}
		}
		secrets[sec.Name] = out
		r.Secrets = append(r.Secrets, out.out)
	}
	sortResources(&r)
	if err := e.valid.Validate(r); err != nil {
		return xdsgen.Resources{}, err
	}
	e.hosts, e.clusters, e.secrets = hosts, clusters, secrets
	return r, nil
}

// sameExceptEndpoints reports whether two clusters differ at most in their endpoints.
func sameExceptEndpoints(a, b *ir.Cluster) bool {
	a2, b2 := *a, *b
	a2.Localities, b2.Localities = nil, nil
	return reflect.DeepEqual(&a2, &b2)
}

func sortResources(r *xdsgen.Resources) {
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
	slices.SortFunc(r.Secrets, func(a, b *tlsv3.Secret) int { return cmp.Compare(a.GetName(), b.GetName()) })
}

type xdsGen struct {
	cfg *ir.Config
	// host encodes a virtual host for the plain or the TLS listener; nil encodes it anew.
	host func(vh *ir.VirtualHost, https bool) *routev3.VirtualHost
}

func typed(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("ingress: marshal %T: %v", m, err))
	}
	return a
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func address(port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func (g *xdsGen) hcm(statPrefix, routes string) *listenerv3.Filter {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource: ads(), RouteConfigName: routes,
		}},
		HttpFilters:    append(g.optionalFilters(), &hcmv3.HttpFilter{Name: routerName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(&routerv3.Router{})}}),
		StripPortMode:  &hcmv3.HttpConnectionManager_StripAnyHostPort{StripAnyHostPort: true},
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket"}},
		// Clients' X-Forwarded-For is kept and the peer appended, as nginx's default
		// proxy_add_x_forwarded_for.
		UseRemoteAddress: wrapperspb.Bool(true),
	}
	if g.cfg.AccessLog {
		h.AccessLog = []*accesslogv3.AccessLog{{
			Name:       stdoutLogName,
			ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: typed(&streamv3.StdoutAccessLog{})},
		}}
	}
	return &listenerv3.Filter{Name: hcmName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(h)}}
}

func (g *xdsGen) httpListener() *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:         httpListener,
		Address:      address(g.cfg.HTTPPort),
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{g.hcm(httpListener, httpRoutes)}}},
	}
}

// httpsListener has one filter chain per host with a certificate, matched by SNI, and the
// default certificate's chain for other names; nil when there is no certificate.
func (g *xdsGen) httpsListener() *listenerv3.Listener {
	if g.cfg.DefaultCertificate == "" && len(g.cfg.Passthrough) == 0 {
		return nil
	}
	l := &listenerv3.Listener{
		Name:    httpsListener,
		Address: address(g.cfg.HTTPSPort),
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       tlsInspectorName,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: typed(&tlsinspectorv3.TlsInspector{})},
		}},
	}
	for _, vh := range g.cfg.VirtualHosts {
		if vh.TLS == nil || vh.Name == "*" {
			continue
		}
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			Name:             vh.Name,
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: slices.Clone(vh.Domains)},
			Filters:          []*listenerv3.Filter{g.hcm(httpsListener, httpsRoutes)},
			TransportSocket:  downstreamTLS(vh.TLS.Secret, vh.TLS),
		})
	}
	for _, p := range g.cfg.Passthrough {
		l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
			Name:             "passthrough/" + p.Host,
			FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{p.Host}},
			Filters: []*listenerv3.Filter{{
				Name: filterTCPProxy,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed(&tcpproxyv3.TcpProxy{
					StatPrefix:       "passthrough",
					ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: p.Cluster},
				})},
			}},
		})
	}
	if g.cfg.DefaultCertificate != "" {
		l.DefaultFilterChain = &listenerv3.FilterChain{
			Name:            "default",
			Filters:         []*listenerv3.Filter{g.hcm(httpsListener, httpsRoutes)},
			TransportSocket: downstreamTLS(g.cfg.DefaultCertificate, nil),
		}
	}
	return l
}

func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ads()}
}

func downstreamTLS(secret string, t *ir.HostTLS) *corev3.TransportSocket {
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds(secret)},
		AlpnProtocols:                  []string{"h2", "http/1.1"},
	}}
	if t != nil {
		if t.ClientCA != "" {
			ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: sds(t.ClientCA),
			}
			ctx.RequireClientCertificate = wrapperspb.Bool(t.RequireClientCert)
		}
		if len(t.Ciphers) > 0 {
			ctx.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{CipherSuites: t.Ciphers}
		}
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(ctx)}}
}

func secret(s *ir.Secret) *tlsv3.Secret {
	inline := func(v string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(v)}}
	}
	if s.Cert != "" {
		return &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(s.Cert), PrivateKey: inline(s.Key),
		}}}
	}
	return &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inline(s.CA),
	}}}
}

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"ROUND_ROBIN":   clusterv3.Cluster_ROUND_ROBIN,
	"LEAST_REQUEST": clusterv3.Cluster_LEAST_REQUEST,
	"RING_HASH":     clusterv3.Cluster_RING_HASH,
	"MAGLEV":        clusterv3.Cluster_MAGLEV,
	"RANDOM":        clusterv3.Cluster_RANDOM,
}

func (g *xdsGen) cluster(c *ir.Cluster) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment) {
	connect := defaultConnectTimeout
	if c.ConnectTimeout != nil {
		connect = c.ConnectTimeout.Duration
	}
	out := &clusterv3.Cluster{
		Name:           c.Name,
		ConnectTimeout: dur(connect),
		LbPolicy:       lbPolicies[c.LB],
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: c.Name}
	for _, l := range c.Localities {
		le := &endpointv3.LocalityLbEndpoints{
			Locality: &corev3.Locality{Zone: l.Zone},
			Priority: l.Priority,
			// gRPC's xDS client ignores localities without a weight; Envoy reads it only
			// with locality-weighted balancing.
			LoadBalancingWeight: wrapperspb.UInt32(1),
		}
		for _, e := range l.Endpoints {
			le.LbEndpoints = append(le.LbEndpoints, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
				Endpoint: &endpointv3.Endpoint{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: e.Address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: e.Port},
				}}}},
			}})
		}
		cla.Endpoints = append(cla.Endpoints, le)
	}
	if c.Protocol == "HTTP2" {
		out.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: typed(&httpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
			}},
		})}
	}
	if c.TLS != nil {
		out.TransportSocket = upstreamTLS(c)
	}
	if c.Kind == ir.ClusterDNS {
		out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		out.LoadAssignment = cla
		return out, nil
	}
	out.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
	out.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()}
	return out, cla
}

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"1.0": tlsv3.TlsParameters_TLSv1_0, "1.1": tlsv3.TlsParameters_TLSv1_1,
	"1.2": tlsv3.TlsParameters_TLSv1_2, "1.3": tlsv3.TlsParameters_TLSv1_3,
}

func upstreamTLS(c *ir.Cluster) *corev3.TransportSocket {
	t := c.TLS
	common := &tlsv3.CommonTlsContext{}
	if t.Verify {
		vc := &tlsv3.CertificateValidationContext{}
		if t.CA != "" {
			vc.TrustedCa = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(t.CA)}}
		} else {
			vc.SystemRootCerts = &tlsv3.CertificateValidationContext_SystemRootCerts{}
		}
		if t.VerifyName != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.VerifyName}},
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	if t.ClientSecret != "" {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sds(t.ClientSecret)}
	}
	if len(t.Ciphers) > 0 || t.MinVersion != "" {
		common.TlsParams = &tlsv3.TlsParameters{
			CipherSuites:              t.Ciphers,
			TlsMinimumProtocolVersion: tlsVersions[t.MinVersion],
			TlsMaximumProtocolVersion: tlsVersions[t.MaxVersion],
		}
	}
	if c.Protocol == "HTTP2" {
		common.AlpnProtocols = []string{"h2"}
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: typed(&tlsv3.UpstreamTlsContext{
		Sni: t.SNI, CommonTlsContext: common,
	})}}
}

// routeConfig is the route table of the plain (https false) or the TLS listener. Routes that
// redirect to https do so on the plain listener only.
func (g *xdsGen) routeConfig(name string, https bool) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: name}
	for _, vh := range g.cfg.VirtualHosts {
		if g.host != nil {
			rc.VirtualHosts = append(rc.VirtualHosts, g.host(vh, https))
		} else {
			rc.VirtualHosts = append(rc.VirtualHosts, g.virtualHost(vh, https))
		}
	}
	return rc
}

func (g *xdsGen) virtualHost(vh *ir.VirtualHost, https bool) *routev3.VirtualHost {
	out := &routev3.VirtualHost{Name: vh.Name, Domains: vh.Domains}
	for _, r := range vh.Routes {
		out.Routes = append(out.Routes, g.route(r, https))
	}
	return out
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func (g *xdsGen) route(r *ir.Route, https bool) *routev3.Route {
	out := &routev3.Route{Name: r.Name, Match: match(r.Match)}
	switch {
	case r.HTTPSRedirect && !https:
		out.Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{
			SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
			ResponseCode:           routev3.RedirectAction_PERMANENT_REDIRECT,
		}}
		return out
	case r.Redirect != nil:
		rd := r.Redirect
		a := &routev3.RedirectAction{HostRedirect: rd.Host, PortRedirect: rd.Port, StripQuery: rd.StripQuery, ResponseCode: redirectCodes[rd.Code]}
		if rd.Scheme != "" {
			a.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
		}
		if rd.Path != "" {
			a.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: rd.Path}
		}
		out.Action = &routev3.Route_Redirect{Redirect: a}
		return out
	case r.Respond != nil:
		dr := &routev3.DirectResponseAction{Status: uint32(r.Respond.Status)}
		if r.Respond.Body != "" {
			dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: r.Respond.Body}}
		}
		out.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
		return out
	}
	a := &routev3.RouteAction{}
	if len(r.Backends) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: r.Backends[0].Cluster}
	} else {
		wc := &routev3.WeightedCluster{}
		for _, b := range r.Backends {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: b.Cluster, Weight: wrapperspb.UInt32(b.Weight)})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	p := r.Policy
	if p.Timeout != nil {
		a.Timeout = dur(p.Timeout.Duration)
	}
	if p.IdleTimeout != nil {
		a.IdleTimeout = dur(p.IdleTimeout.Duration)
	}
	if rw := p.Rewrite; rw != nil {
		if rw.Pattern != "" {
			a.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: rw.Pattern}, Substitution: rw.Substitution}
		}
		if rw.Host != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
	}
	if rt := p.Retry; rt != nil {
		rp := &routev3.RetryPolicy{
			RetryOn:    strings.Join(rt.On, ","),
			NumRetries: wrapperspb.UInt32(rt.NumRetries),
			// nginx's next upstream is another server.
			RetryHostPredicate: []*routev3.RetryPolicy_RetryHostPredicate{{
				Name:       previousHosts,
				ConfigType: &routev3.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: previousHostsConfig},
			}},
			HostSelectionRetryMaxAttempts: 3,
			RetriableStatusCodes:          rt.StatusCodes,
		}
		a.RetryPolicy = rp
	}
	for _, h := range p.Hash {
		hp := &routev3.RouteAction_HashPolicy{}
		switch {
		case h.SourceIP:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}
		case h.Header != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h.Header}}
		case h.Query != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: h.Query}}
		case h.Cookie != nil:
			ck := &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie.Name, Path: h.Cookie.Path}
			if h.Cookie.TTL != nil {
				ck.Ttl = dur(h.Cookie.TTL.Duration)
			}
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: ck}
		}
		a.HashPolicy = append(a.HashPolicy, hp)
	}
	for _, m := range p.Mirrors {
		a.RequestMirrorPolicies = append(a.RequestMirrorPolicies, &routev3.RouteAction_RequestMirrorPolicy{Cluster: m})
	}
	out.Action = &routev3.Route_Route{Route: a}
	for _, h := range p.RequestHeaders {
		out.RequestHeadersToAdd = append(out.RequestHeadersToAdd, setHeader(h))
	}
	for _, h := range p.ResponseHeaders {
		out.ResponseHeadersToAdd = append(out.ResponseHeadersToAdd, setHeader(h))
	}
	out.RequestHeadersToRemove = p.RemoveRequestHeaders
	if p.BufferLimit > 0 {
		out.PerRequestBufferLimitBytes = wrapperspb.UInt32(p.BufferLimit)
	}
	out.TypedPerFilterConfig = g.perRoute(r)
	return out
}

func setHeader(h ir.Header) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func match(m ir.Match) *routev3.RouteMatch {
	out := &routev3.RouteMatch{}
	switch m.Kind {
	case ir.PathExact:
		out.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case ir.PathPrefix:
		if m.Path == "/" {
			out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
		} else {
			out.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: m.Path}
		}
	case ir.PathStringPrefix:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Path}
	case ir.PathRegex:
		re := m.Path + ".*"
		if m.CaseInsensitive {
			re = "(?i)" + re
		}
		out.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: re}}
	default:
		out.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: h.Name, InvertMatch: h.Invert}
		switch {
		case h.Present:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		case h.Regex != "":
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.Regex}},
			}}
		default:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact},
			}}
		}
		out.Headers = append(out.Headers, hm)
	}
	return out
}
