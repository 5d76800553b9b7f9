// Package extauthz is the envoy.filters.http.ext_authz filter: before a request goes
// upstream it asks an authorization service whether to let it through, and either forwards
// it (with the headers the service adds) or answers with the service's denial.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.ext_authz.v3.ExtAuthz with http_service:
// server_uri {uri, cluster, timeout}, path_prefix or path_override, authorization_request {allowed_headers,
// headers_to_add} and authorization_response {allowed_upstream_headers,
// allowed_upstream_headers_to_append, allowed_client_headers,
// allowed_client_headers_on_success}; failure_mode_allow, failure_mode_allow_header_add,
// status_on_error, with_request_body {max_request_bytes, allow_partial_message,
// pack_as_bytes}, clear_route_cache, stat_prefix and transport_api_version. grpc_service
// {envoy_grpc {cluster_name, authority}, timeout} may replace http_service: the check is then
// a call to envoy.service.auth.v3.Authorization/Check (grpc.go). Any other field is rejected
// with its path.
//
// typed_per_filter_config takes ExtAuthzPerRoute: disabled, or check_settings
// {context_extensions, disable_request_body_buffering, with_request_body}.
//
// # The check
//
// In HTTP mode, the check request is made in the stream's goroutine over the named cluster, with the
// router's load balancer and upstream pools. It carries the client's method, its path behind
// path_prefix, its Host, the client headers allowed_headers selects (all when unset), the
// headers_to_add and, with with_request_body, the buffered body. The call is bounded by
// server_uri.timeout and by the stream: a client that goes away cancels it.
//
// A 2xx answer lets the request through: headers of the answer selected by
// allowed_upstream_headers replace the request's, those selected by
// allowed_upstream_headers_to_append are appended, x-envoy-auth-headers-to-remove names
// request headers to drop, and allowed_client_headers_on_success go on the response. Any
// other answer is a denial: the client gets its status, body and the headers
// allowed_client_headers selects (all but framing and Host when unset), flag UAEX. A failed
// call (connection refused, timeout, reset, a malformed answer) answers status_on_error
// (default 403) with flag UAEX, or with failure_mode_allow lets the request through, marked
// x-envoy-auth-failure-mode-allowed: true when failure_mode_allow_header_add is set.
// x-envoy-auth-* headers sent by the client are removed before anything else.
//
// # Stats
//
// Under the connection manager's scope: http.<stat_prefix>.ext_authz.ok, denied, error,
// failure_mode_allowed and disabled (with the filter's own stat_prefix inserted after
// ext_authz when set).
package extauthz

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.ext_authz"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"

// PerRouteTypeURL is the type URL of its typed_per_filter_config.
const PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute"

func init() { httpfilter.Register(Factory{}) }

// Factory builds ext_authz configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PerRouteTypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

// Config is a compiled ExtAuthz.
type Config struct {
	clusterName string
	// ref is the authorization service's cluster, set by WithClusters; a config used
	// outside a connection manager has an empty one.
	ref       *cluster.Ref
	timeout   time.Duration
	prefix    string
	override  string // path_override: the check's whole path, instead of prefix + the client's
	authority string // server_uri's host, used when the client sent none

	allowedHeaders *listMatcher // nil: every client header
	headersToAdd   []header.Field

	upstream       *listMatcher
	upstreamAppend *listMatcher
	client         *listMatcher // nil: every header of the denial
	clientSuccess  *listMatcher

	failureModeAllow bool
	failureHeaderAdd bool
	statusOnError    int
	body             *bodySettings
	clearRouteCache  bool
	statPrefix       string

	grpc *grpcSettings // grpc_service; nil in HTTP service mode

	stats *filterStats // under the connection manager's scope; nil outside one
}

// bodySettings is with_request_body.
type bodySettings struct {
	max          int
	allowPartial bool
	packAsBytes  bool // gRPC: the body goes in raw_body rather than body
}

type filterStats struct {
	ok, denied, errors, failureModeAllowed, disabled *stats.Counter
}

// perRoute is a compiled ExtAuthzPerRoute.
type perRoute struct {
	disabled          bool
	contextExtensions map[string]string
	noBodyBuffering   bool
	body              *bodySettings
}

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseRequestBody | httpfilter.PhaseRequestTrailers | httpfilter.PhaseResponseHeaders
}

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	out := *c
	p := "ext_authz."
	if c.statPrefix != "" {
		p += c.statPrefix + "."
	}
	out.stats = &filterStats{
		ok:                 sc.Counter(p + "ok"),
		denied:             sc.Counter(p + "denied"),
		errors:             sc.Counter(p + "error"),
		failureModeAllowed: sc.Counter(p + "failure_mode_allowed"),
		disabled:           sc.Counter(p + "disabled"),
	}
	return &out
}

// WithClusters implements hcm.ClusterConfig: the authorization service's cluster slot is
// resolved once per chain.
func (c *Config) WithClusters(resolve func(string) *cluster.Ref) httpfilter.Config {
	out := *c
	out.ref = resolve(c.clusterName)
	return &out
}

// Phases of an override are never asked for; it only carries per-route settings.
func (p *perRoute) Phases() httpfilter.Phases { return 0 }

// NewFilter of an override is never called: the chain's Config makes the filters.
func (p *perRoute) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter {
	return httpfilter.PassThrough{}
}

// supported lists the fields the decoder reads, per message; any other set field is rejected.
var supported = map[protoreflect.FullName][]protoreflect.Name{
	"envoy.extensions.filters.http.ext_authz.v3.ExtAuthz": {"http_service", "grpc_service", "transport_api_version",
		"failure_mode_allow", "failure_mode_allow_header_add", "with_request_body", "clear_route_cache",
		"status_on_error", "stat_prefix"},
	"envoy.extensions.filters.http.ext_authz.v3.HttpService":           {"server_uri", "path_prefix", "path_override", "authorization_request", "authorization_response"},
	"envoy.config.core.v3.HttpUri":                                     {"uri", "cluster", "timeout"},
	"envoy.config.core.v3.GrpcService":                                 {"envoy_grpc", "timeout"},
	"envoy.config.core.v3.GrpcService.EnvoyGrpc":                       {"cluster_name", "authority"},
	"envoy.extensions.filters.http.ext_authz.v3.AuthorizationRequest":  {"allowed_headers", "headers_to_add"},
	"envoy.extensions.filters.http.ext_authz.v3.AuthorizationResponse": {"allowed_upstream_headers", "allowed_upstream_headers_to_append", "allowed_client_headers", "allowed_client_headers_on_success"},
	"envoy.extensions.filters.http.ext_authz.v3.BufferSettings":        {"max_request_bytes", "allow_partial_message", "pack_as_bytes"},
	"envoy.type.matcher.v3.ListStringMatcher":                          {"patterns"},
	"envoy.type.matcher.v3.StringMatcher":                              {"exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"},
	"envoy.type.matcher.v3.RegexMatcher":                               {"regex", "google_re2"},
	"envoy.type.matcher.v3.RegexMatcher.GoogleRE2":                     {},
	"envoy.config.core.v3.HeaderValue":                                 {"key", "value"},
	"envoy.type.v3.HttpStatus":                                         {"code"},
	"envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute":      {"disabled", "check_settings"},
	"envoy.extensions.filters.http.ext_authz.v3.CheckSettings":         {"context_extensions", "disable_request_body_buffering", "with_request_body"},
}

// checkFields rejects any set field the decoder does not read, naming its path.
func checkFields(prefix string, m protoreflect.Message) error {
	allowed := supported[m.Descriptor().FullName()]
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		ok := false
		for _, a := range allowed {
			ok = ok || fd.Name() == a
		}
		if !ok {
			err = fmt.Errorf("ext_authz: %s: not supported", name)
			return false
		}
		md := fd.Message()
		if md == nil || md.FullName().Parent() == "google.protobuf" || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkFields(fmt.Sprintf("%s[%d].", name, i), l.Get(i).Message())
			}
			return err == nil
		}
		err = checkFields(name+".", v.Message())
		return err == nil
	})
	return err
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	a, ok := m.(*extauthzv3.ExtAuthz)
	if !ok {
		return nil, fmt.Errorf("ext_authz: unexpected config type %T", m)
	}
	if err := checkFields("", a.ProtoReflect()); err != nil {
		return nil, err
	}
	switch v := a.GetTransportApiVersion(); v {
	case corev3.ApiVersion_AUTO, corev3.ApiVersion_V3:
	default:
		return nil, fmt.Errorf("ext_authz: transport_api_version: %v: only V3 is supported", v)
	}
	hs := a.GetHttpService()
	c := &Config{
		failureModeAllow: a.GetFailureModeAllow(),
		failureHeaderAdd: a.GetFailureModeAllowHeaderAdd(),
		statusOnError:    403,
		clearRouteCache:  a.GetClearRouteCache(),
		statPrefix:       a.GetStatPrefix(),
		prefix:           hs.GetPathPrefix(),
		override:         hs.GetPathOverride(),
	}
	var err error
	if c.body, err = compileBody("with_request_body", a.GetWithRequestBody()); err != nil {
		return nil, err
	}
	if s := a.GetStatusOnError(); s != nil {
		code := int(s.GetCode())
		if code < 100 || code > 599 {
			return nil, fmt.Errorf("ext_authz: status_on_error.code: %d is not an HTTP status", code)
		}
		c.statusOnError = code
	}
	if gs := a.GetGrpcService(); gs != nil {
		if err := c.compileGRPC(gs); err != nil {
			return nil, err
		}
		return c, nil
	}
	if hs == nil {
		return nil, fmt.Errorf("ext_authz: one of http_service and grpc_service is required")
	}
	if c.prefix != "" && !strings.HasPrefix(c.prefix, "/") {
		return nil, fmt.Errorf("ext_authz: http_service.path_prefix: %q must start with /", c.prefix)
	}
	if strings.ContainsAny(c.prefix, "?# \t\r\n") {
		return nil, fmt.Errorf("ext_authz: http_service.path_prefix: %q has a character not allowed in a path", c.prefix)
	}
	if c.override != "" {
		if c.prefix != "" {
			return nil, fmt.Errorf("ext_authz: http_service.path_override: only one of path_prefix and path_override may be set")
		}
		if !strings.HasPrefix(c.override, "/") || strings.ContainsAny(c.override, "# \t\r\n") {
			return nil, fmt.Errorf("ext_authz: http_service.path_override: %q is not a path", c.override)
		}
	}
	su := hs.GetServerUri()
	if su == nil {
		return nil, fmt.Errorf("ext_authz: http_service.server_uri: required")
	}
	if c.clusterName = su.GetCluster(); c.clusterName == "" {
		return nil, fmt.Errorf("ext_authz: http_service.server_uri.cluster: required")
	}
	u, perr := url.Parse(su.GetUri())
	if perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("ext_authz: http_service.server_uri.uri: %q is not an http(s) URL", su.GetUri())
	}
	c.authority = u.Host
	if su.GetTimeout() == nil {
		return nil, fmt.Errorf("ext_authz: http_service.server_uri.timeout: required")
	}
	if c.timeout = su.GetTimeout().AsDuration(); c.timeout <= 0 {
		return nil, fmt.Errorf("ext_authz: http_service.server_uri.timeout: must be positive")
	}
	c.ref = cluster.NewRef(c.clusterName)
	req := hs.GetAuthorizationRequest()
	if c.allowedHeaders, err = compileList("http_service.authorization_request.allowed_headers", req.GetAllowedHeaders()); err != nil {
		return nil, err
	}
	for i, hv := range req.GetHeadersToAdd() {
		k := strings.ToLower(hv.GetKey())
		if k == "" || strings.HasPrefix(k, ":") || !validName(k) {
			return nil, fmt.Errorf("ext_authz: http_service.authorization_request.headers_to_add[%d].key: %q is not a header name", i, hv.GetKey())
		}
		if strings.ContainsAny(hv.GetValue(), "\r\n\x00") {
			return nil, fmt.Errorf("ext_authz: http_service.authorization_request.headers_to_add[%d].value: has a control character", i)
		}
		c.headersToAdd = append(c.headersToAdd, header.Field{Name: k, Value: hv.GetValue()})
	}
	resp := hs.GetAuthorizationResponse()
	if c.upstream, err = compileList("http_service.authorization_response.allowed_upstream_headers", resp.GetAllowedUpstreamHeaders()); err != nil {
		return nil, err
	}
	if c.upstreamAppend, err = compileList("http_service.authorization_response.allowed_upstream_headers_to_append", resp.GetAllowedUpstreamHeadersToAppend()); err != nil {
		return nil, err
	}
	if c.client, err = compileList("http_service.authorization_response.allowed_client_headers", resp.GetAllowedClientHeaders()); err != nil {
		return nil, err
	}
	if c.clientSuccess, err = compileList("http_service.authorization_response.allowed_client_headers_on_success", resp.GetAllowedClientHeadersOnSuccess()); err != nil {
		return nil, err
	}
	return c, nil
}

func compileBody(path string, b *extauthzv3.BufferSettings) (*bodySettings, error) {
	if b == nil {
		return nil, nil
	}
	if b.GetMaxRequestBytes() == 0 {
		return nil, fmt.Errorf("ext_authz: %s.max_request_bytes: must be positive", path)
	}
	return &bodySettings{max: int(b.GetMaxRequestBytes()), allowPartial: b.GetAllowPartialMessage(), packAsBytes: b.GetPackAsBytes()}, nil
}

// NewOverride implements httpfilter.Factory.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	pr, ok := m.(*extauthzv3.ExtAuthzPerRoute)
	if !ok {
		return nil, fmt.Errorf("ext_authz: unexpected per-route config type %T", m)
	}
	if err := checkFields("", pr.ProtoReflect()); err != nil {
		return nil, err
	}
	switch o := pr.GetOverride().(type) {
	case *extauthzv3.ExtAuthzPerRoute_Disabled:
		if !o.Disabled {
			return nil, fmt.Errorf("ext_authz: disabled: must be true when set")
		}
		return &perRoute{disabled: true}, nil
	case *extauthzv3.ExtAuthzPerRoute_CheckSettings:
		cs := o.CheckSettings
		out := &perRoute{contextExtensions: cs.GetContextExtensions(), noBodyBuffering: cs.GetDisableRequestBodyBuffering()}
		var err error
		if out.body, err = compileBody("check_settings.with_request_body", cs.GetWithRequestBody()); err != nil {
			return nil, err
		}
		if out.noBodyBuffering && out.body != nil {
			return nil, fmt.Errorf("ext_authz: check_settings: disable_request_body_buffering and with_request_body are exclusive")
		}
		return out, nil
	}
	return nil, fmt.Errorf("ext_authz: one of disabled or check_settings is required")
}

// validName reports whether s is an HTTP field name (RFC 9110 token).
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}
