package decode

import (
	"errors"
	"strings"
	"time"

	udpatypev1 "github.com/cncf/xds/go/udpa/type/v1"
	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

const hcmName = "envoy.filters.network.http_connection_manager"

// Envoy's HTTP connection manager defaults.
const (
	defaultStreamIdleTimeout = 5 * time.Minute
	defaultDrainTimeout      = 5 * time.Second
	defaultIdleTimeout       = time.Hour // downstream and upstream connections alike
	defaultMaxHeadersKB      = 60
	maxMaxHeadersKB          = 8192
	defaultMaxHeadersCount   = 100

	defaultH2MaxConcurrentStreams = 1<<31 - 1
	defaultH2WindowSize           = 256 << 20
	minH2WindowSize               = 65535
	maxH2WindowSize               = 1<<31 - 1
)

var (
	_ = allow(&hcmv3.HttpConnectionManager{}, "codec_type", "stat_prefix", "route_config", "rds",
		"http_filters", "use_remote_address", "xff_num_trusted_hops", "server_name",
		"server_header_transformation", "request_timeout", "request_headers_timeout",
		"stream_idle_timeout", "common_http_protocol_options", "max_request_headers_kb",
		"generate_request_id", "preserve_external_request_id", "normalize_path", "merge_slashes",
		"upgrade_configs", "http2_protocol_options", "drain_timeout", "access_log", "strip_any_host_port")
	_ = allow(&hcmv3.HttpFilter{}, "name", "typed_config", "is_optional", "disabled")
	_ = allowOpaque(&hcmv3.HttpFilter{}, "typed_config")
	_ = allow(&hcmv3.HttpConnectionManager_UpgradeConfig{}, "upgrade_type", "enabled")
	_ = allow(&corev3.HttpProtocolOptions{}, "idle_timeout", "max_headers_count",
		"headers_with_underscores_action", "max_requests_per_connection")
	_ = allow(&corev3.Http1ProtocolOptions{})
	_ = allow(&corev3.Http2ProtocolOptions{}, "max_concurrent_streams", "initial_stream_window_size",
		"initial_connection_window_size")
)

func hcm(p path, m *hcmv3.HttpConnectionManager, fs *filterSet) (*model.HTTPConnectionManager, error) {
	out := &model.HTTPConnectionManager{
		StatPrefix:                m.GetStatPrefix(),
		UseRemoteAddress:          m.GetUseRemoteAddress().GetValue(),
		XFFNumTrustedHops:         m.GetXffNumTrustedHops(),
		ServerName:                m.GetServerName(),
		PreserveExternalRequestID: m.GetPreserveExternalRequestId(),
		NormalizePath:             m.GetNormalizePath().GetValue(),
		MergeSlashes:              m.GetMergeSlashes(),
		StripAnyHostPort:          m.GetStripAnyHostPort(),
		GenerateRequestID:         true,
		MaxRequestHeadersBytes:    defaultMaxHeadersKB * 1024,
		MaxHeadersCount:           defaultMaxHeadersCount,
	}
	if out.StatPrefix == "" {
		return nil, p.field("stat_prefix").errorf("required")
	}
	switch m.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO:
		out.Codec = model.CodecAuto
	case hcmv3.HttpConnectionManager_HTTP1:
		out.Codec = model.CodecHTTP1
	case hcmv3.HttpConnectionManager_HTTP2:
		out.Codec = model.CodecHTTP2
	default:
		return nil, p.field("codec_type").errorf("%s not supported yet", m.GetCodecType())
	}
	switch m.GetServerHeaderTransformation() {
	case hcmv3.HttpConnectionManager_OVERWRITE:
	case hcmv3.HttpConnectionManager_PASS_THROUGH:
		out.ServerHeaderPassThrough = true
	default:
		return nil, p.field("server_header_transformation").errorf("%s not supported yet", m.GetServerHeaderTransformation())
	}
	if v := m.GetGenerateRequestId(); v != nil {
		out.GenerateRequestID = v.GetValue()
	}
	if v := m.GetMaxRequestHeadersKb(); v != nil {
		if v.GetValue() < 1 || v.GetValue() > maxMaxHeadersKB {
			return nil, p.field("max_request_headers_kb").errorf("%d out of range [1, %d]", v.GetValue(), maxMaxHeadersKB)
		}
		out.MaxRequestHeadersBytes = v.GetValue() * 1024
	}

	var err error
	if out.RequestTimeout, err = duration(p.field("request_timeout"), m.GetRequestTimeout(), 0); err != nil {
		return nil, err
	}
	if out.RequestHeadersTimeout, err = duration(p.field("request_headers_timeout"), m.GetRequestHeadersTimeout(), 0); err != nil {
		return nil, err
	}
	if out.StreamIdleTimeout, err = duration(p.field("stream_idle_timeout"), m.GetStreamIdleTimeout(), defaultStreamIdleTimeout); err != nil {
		return nil, err
	}
	if out.DrainTimeout, err = duration(p.field("drain_timeout"), m.GetDrainTimeout(), defaultDrainTimeout); err != nil {
		return nil, err
	}

	cp := p.field("common_http_protocol_options")
	opts := m.GetCommonHttpProtocolOptions()
	if out.IdleTimeout, err = duration(cp.field("idle_timeout"), opts.GetIdleTimeout(), defaultIdleTimeout); err != nil {
		return nil, err
	}
	if v := opts.GetMaxHeadersCount(); v != nil {
		if v.GetValue() < 1 {
			return nil, cp.field("max_headers_count").errorf("must be at least 1")
		}
		out.MaxHeadersCount = v.GetValue()
	}
	if opts.GetMaxRequestsPerConnection() != nil {
		return nil, cp.field("max_requests_per_connection").errorf("not supported on downstream connections yet")
	}
	switch opts.GetHeadersWithUnderscoresAction() {
	case corev3.HttpProtocolOptions_ALLOW:
		out.UnderscoresAction = model.UnderscoresAllow
	case corev3.HttpProtocolOptions_REJECT_REQUEST:
		out.UnderscoresAction = model.UnderscoresRejectRequest
	case corev3.HttpProtocolOptions_DROP_HEADER:
		out.UnderscoresAction = model.UnderscoresDropHeader
	}

	if out.UpgradeWebSocket, _, err = hcmUpgrades(p.field("upgrade_configs"), m.GetUpgradeConfigs()); err != nil {
		return nil, err
	}
	if out.HTTP2, err = http2Options(p.field("http2_protocol_options"), m.GetHttp2ProtocolOptions()); err != nil {
		return nil, err
	}

	rc := m.GetRouteConfig()
	switch {
	case m.GetRds() != nil:
		if out.RDS, err = rds(p.field("rds"), m.GetRds()); err != nil {
			return nil, err
		}
	case rc == nil:
		return nil, p.field("route_config").errorf("required (or rds)")
	default:
		// An inline route table is checked against the clusters that exist when it loads,
		// unless it says otherwise (Envoy's validate_clusters default for route_config).
		if out.RouteConfig, err = routeConfig(p.field("route_config"), rc, fs, true); err != nil {
			return nil, err
		}
	}
	if out.HTTPFilters, err = httpFilters(p.field("http_filters"), m.GetHttpFilters(), fs); err != nil {
		return nil, err
	}
	if err := observability(p, m, out); err != nil {
		return nil, err
	}
	return out, nil
}

// hcmUpgrades reads upgrade_configs; websocket is the only upgrade Nuncio proxies.
func hcmUpgrades(p path, ucs []*hcmv3.HttpConnectionManager_UpgradeConfig) (enabled, present bool, err error) {
	for i, uc := range ucs {
		up := p.index(i)
		if !strings.EqualFold(uc.GetUpgradeType(), "websocket") {
			return false, false, up.field("upgrade_type").errorf("%q not supported (only websocket)", uc.GetUpgradeType())
		}
		if present {
			return false, false, up.field("upgrade_type").errorf("duplicate upgrade type %q", uc.GetUpgradeType())
		}
		present = true
		enabled = uc.GetEnabled() == nil || uc.GetEnabled().GetValue()
	}
	return enabled, present, nil
}

// http2Options applies Envoy's HTTP/2 defaults and ranges.
func http2Options(p path, o *corev3.Http2ProtocolOptions) (model.HTTP2Options, error) {
	out := model.HTTP2Options{
		MaxConcurrentStreams:        defaultH2MaxConcurrentStreams,
		InitialStreamWindowSize:     defaultH2WindowSize,
		InitialConnectionWindowSize: defaultH2WindowSize,
	}
	if v := o.GetMaxConcurrentStreams(); v != nil {
		if v.GetValue() < 1 || v.GetValue() > defaultH2MaxConcurrentStreams {
			return out, p.field("max_concurrent_streams").errorf("%d out of range [1, %d]", v.GetValue(), defaultH2MaxConcurrentStreams)
		}
		out.MaxConcurrentStreams = v.GetValue()
	}
	for _, w := range []struct {
		name string
		v    interface{ GetValue() uint32 }
		set  bool
		dst  *uint32
	}{
		{name: "initial_stream_window_size", v: o.GetInitialStreamWindowSize(), set: o.GetInitialStreamWindowSize() != nil, dst: &out.InitialStreamWindowSize},
		{name: "initial_connection_window_size", v: o.GetInitialConnectionWindowSize(), set: o.GetInitialConnectionWindowSize() != nil, dst: &out.InitialConnectionWindowSize},
	} {
		if !w.set {
			continue
		}
		if v := w.v.GetValue(); v < minH2WindowSize || v > maxH2WindowSize {
			return out, p.field(w.name).errorf("%d out of range [%d, %d]", v, minH2WindowSize, maxH2WindowSize)
		}
		*w.dst = w.v.GetValue()
	}
	return out, nil
}

// httpFilters builds the filter chain through the registry's factories.
func httpFilters(p path, hfs []*hcmv3.HttpFilter, fs *filterSet) ([]model.HTTPFilter, error) {
	var out []model.HTTPFilter
	var terminal []bool
	var paths []path
	for i, hf := range hfs {
		fp := p.index(i)
		if hf.GetName() == "" {
			return nil, fp.field("name").errorf("required")
		}
		tc := hf.GetTypedConfig()
		if tc == nil {
			return nil, fp.field("typed_config").errorf("required (filter %q)", hf.GetName())
		}
		typeURL, msg, err := filterConfig(fp.field("typed_config"), tc, fs.reg)
		if err != nil {
			if hf.GetIsOptional() && errors.Is(err, errUnknownFilter) {
				fs.skip(hf.GetName(), typeURL) // Envoy skips an optional filter it does not know
				continue
			}
			if errors.Is(err, errUnknownFilter) {
				return nil, fp.field("typed_config").errorf("unknown filter type %s (filter %q); mark it is_optional to skip it", typeURL, hf.GetName())
			}
			return nil, err
		}
		f, _ := lookup(fs.reg, typeURL)
		cfg, err := f.NewConfig(msg)
		if err != nil {
			return nil, fp.field("typed_config").errorf("%s: %v", hf.GetName(), err)
		}
		out = append(out, model.HTTPFilter{Name: hf.GetName(), TypeURL: typeURL, Config: cfg, Disabled: hf.GetDisabled()})
		terminal = append(terminal, f.Info().Terminal)
		paths = append(paths, fp)
	}
	if len(out) == 0 {
		return nil, p.errorf("a terminal filter (envoy.filters.http.router) required")
	}
	for i := range out {
		last := i == len(out)-1
		switch {
		case terminal[i] && !last:
			return nil, paths[i].errorf("terminal filter %q must be the last filter", out[i].Name)
		case !terminal[i] && last:
			return nil, paths[i].errorf("the last filter %q is not a terminal filter", out[i].Name)
		case terminal[i] && out[i].Disabled:
			return nil, paths[i].field("disabled").errorf("the terminal filter cannot be disabled")
		}
	}
	return out, nil
}

// errUnknownFilter marks a type URL no factory is registered for.
var errUnknownFilter = errors.New("unknown filter type")

func lookup(reg *httpfilter.Registry, typeURL string) (httpfilter.Factory, bool) {
	if reg == nil {
		return nil, false
	}
	return reg.ByTypeURL(typeURL)
}

// filterConfig resolves a filter's typed_config to its type URL and message, unwrapping a
// udpa or xds TypedStruct (a JSON-ish rendering of the config) into the real message.
func filterConfig(p path, a *anypb.Any, reg *httpfilter.Registry) (string, proto.Message, error) {
	typeURL := a.GetTypeUrl()
	var st *structpb.Struct
	switch typeName(typeURL) {
	case "udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct":
		m, err := unpack(p, a)
		if err != nil {
			return typeURL, nil, err
		}
		switch ts := m.(type) {
		case *udpatypev1.TypedStruct:
			typeURL, st = ts.GetTypeUrl(), ts.GetValue()
		case *xdstypev3.TypedStruct:
			typeURL, st = ts.GetTypeUrl(), ts.GetValue()
		}
		if typeURL == "" {
			return "", nil, p.field("type_url").errorf("required")
		}
		if st == nil {
			st = &structpb.Struct{} // a TypedStruct without value is the empty config
		}
	}
	if _, ok := lookup(reg, typeURL); !ok {
		return typeURL, nil, errUnknownFilter
	}
	if st == nil {
		m, err := unpack(p, a)
		return typeURL, m, err
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(typeName(typeURL))
	if err != nil {
		return typeURL, nil, p.field("type_url").errorf("%s: %v", typeURL, err)
	}
	js, err := protojson.Marshal(st)
	if err != nil {
		return typeURL, nil, p.field("value").errorf("%v", err)
	}
	m := mt.New().Interface()
	if err := protojson.Unmarshal(js, m); err != nil {
		return typeURL, nil, p.field("value").errorf("%s", strings.TrimPrefix(err.Error(), "proto: "))
	}
	return typeURL, m, nil
}

// typeName is the message name a type URL refers to (the part after the last '/').
func typeName(typeURL string) protoreflect.FullName {
	return protoreflect.FullName(typeURL[strings.LastIndexByte(typeURL, '/')+1:])
}
