// Package localratelimit is the envoy.filters.http.local_ratelimit filter: token buckets kept
// in the process limit the requests a listener, a route or a client may make.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit:
//
//   - token_bucket: the default bucket (max_tokens, tokens_per_fill, fill_interval ≥ 50ms).
//     Without it only descriptors limit.
//   - filter_enabled, filter_enforced: the share of requests checked, and of those over the
//     limit refused (default_value; unset is 0%, as in Envoy). A request over the limit but not
//     enforced passes with request_headers_to_add_when_not_enforced.
//   - status (default 429, codes below 400 mean 429), response_headers_to_add (on refusals).
//   - enable_x_ratelimit_headers: DRAFT_VERSION_03 adds x-ratelimit-limit, -remaining and
//     -reset to every checked response.
//   - local_rate_limit_per_downstream_connection: a default bucket per connection.
//   - rate_limits (remote_address, generic_key and request_headers actions) and descriptors
//     (entries with an empty value are dynamic: a bucket per distinct value, at most
//     max_dynamic_descriptors of them, default 20). A request whose descriptor matches
//     takes a token from the descriptor's bucket, and from the default bucket unless
//     always_consume_default_token_bucket is false.
//
// typed_per_filter_config takes the same message and replaces the filter's configuration for
// the virtual host or route, with its own buckets. Runtime keys, stage, vh_rate_limits,
// local_cluster_rate_limit and the rest of the message are rejected with their field path:
// Nuncio has no runtime, and routes carry no rate_limits of their own.
//
// A refused request gets the status, the body "local_rate_limited" and the RL response flag.
//
// # Stats
//
// http.<hcm stat_prefix>.<stat_prefix>.http_local_rate_limit.enabled, enforced,
// rate_limited and ok (counters). A route's override counts in its chain's filter stats.
package localratelimit

import (
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	lrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.local_ratelimit"

// TypeURL is the type URL of its typed_config.
const TypeURL = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"

func init() { httpfilter.Register(Factory{}) }

// Factory builds local rate limit configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

// Config is a compiled LocalRateLimit with, once its connection manager has scoped it, its
// stats.
type Config struct {
	r     *rules
	stats *lrStats
}

// rules is what a LocalRateLimit limits; a route override has its own.
type rules struct {
	statPrefix        string
	enabled, enforced percent
	status            int
	def               *spec // nil: no default bucket
	defBucket         *bucket
	perConn           *table // a default bucket per connection
	alwaysDefault     bool
	respAdd           []headerOp
	reqAddNotEnforced []headerOp
	xHeaders          bool
	limits            []rateLimit
}

// percent is a FractionalPercent: num out of den.
type percent struct{ num, den uint32 }

// rateLimit is one of rate_limits: its actions make a descriptor; cands are the configured
// descriptors whose keys are the ones it makes, in order.
type rateLimit struct {
	actions []action
	cands   []*descriptor
}

type actionKind uint8

const (
	actRemoteAddress actionKind = iota
	actGenericKey
	actRequestHeader
)

// action makes one descriptor entry.
type action struct {
	kind   actionKind
	key    string
	value  string // generic_key's value
	header string // request_headers' header name
}

// maxEntries bounds a descriptor's entries, so a request builds them on the stack.
const maxEntries = 8

// descriptor is a configured LocalRateLimitDescriptor. An empty value matches any value and
// then gives each distinct value its own bucket from dyn.
type descriptor struct {
	keys, values []string
	dynamic      bool
	sp           spec
	b            *bucket
	dyn          *table
}

type headerOp struct {
	name, value string
	action      corev3.HeaderValueOption_HeaderAppendAction
}

func (op headerOp) apply(h *header.Map) {
	switch op.action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h.Add(op.name, op.value)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if !h.Has(op.name) {
			h.Add(op.name, op.value)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		h.Set(op.name, op.value)
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.Has(op.name) {
			h.Set(op.name, op.value)
		}
	}
}

// supported lists the fields NewConfig reads, per message; any other set field is rejected.
var supported = map[protoreflect.FullName][]protoreflect.Name{
	"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit": {"stat_prefix", "status", "token_bucket",
		"filter_enabled", "filter_enforced", "request_headers_to_add_when_not_enforced", "response_headers_to_add",
		"descriptors", "local_rate_limit_per_downstream_connection", "enable_x_ratelimit_headers",
		"always_consume_default_token_bucket", "rate_limits", "max_dynamic_descriptors"},
	"envoy.type.v3.TokenBucket":                                      {"max_tokens", "tokens_per_fill", "fill_interval"},
	"envoy.type.v3.HttpStatus":                                       {"code"},
	"envoy.config.core.v3.RuntimeFractionalPercent":                  {"default_value"},
	"envoy.type.v3.FractionalPercent":                                {"numerator", "denominator"},
	"envoy.config.core.v3.HeaderValueOption":                         {"header", "append_action"},
	"envoy.config.core.v3.HeaderValue":                               {"key", "value"},
	"envoy.extensions.common.ratelimit.v3.LocalRateLimitDescriptor":  {"entries", "token_bucket"},
	"envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.Entry": {"key", "value"},
	"envoy.config.route.v3.RateLimit":                                {"actions"},
	"envoy.config.route.v3.RateLimit.Action":                         {"remote_address", "generic_key", "request_headers"},
	"envoy.config.route.v3.RateLimit.Action.RemoteAddress":           {},
	"envoy.config.route.v3.RateLimit.Action.GenericKey":              {"descriptor_value", "descriptor_key"},
	"envoy.config.route.v3.RateLimit.Action.RequestHeaders":          {"header_name", "descriptor_key"},
}

func checkFields(prefix string, m protoreflect.Message) error {
	allowed, known := supported[m.Descriptor().FullName()]
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		ok := false
		for _, a := range allowed {
			ok = ok || fd.Name() == a
		}
		if !ok || !known {
			err = fmt.Errorf("local_ratelimit: %s: not supported", name)
			return false
		}
		if fd.Message() == nil || fd.Message().FullName().Parent() == "google.protobuf" || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = checkFields(fmt.Sprintf("%s[%d].", name, i), l.Get(i).Message())
			}
		} else {
			err = checkFields(name+".", v.Message())
		}
		return err == nil
	})
	return err
}

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	l, ok := m.(*lrlv3.LocalRateLimit)
	if !ok {
		return nil, fmt.Errorf("local_ratelimit: unexpected config type %T", m)
	}
	r, err := compile(l)
	if err != nil {
		return nil, err
	}
	return &Config{r: r}, nil
}

// NewOverride implements httpfilter.Factory: a per-route LocalRateLimit replaces the filter's
// rules, with buckets of its own.
func (fa Factory) NewOverride(m proto.Message) (httpfilter.Config, error) { return fa.NewConfig(m) }

func compile(l *lrlv3.LocalRateLimit) (*rules, error) {
	if err := checkFields("", l.ProtoReflect()); err != nil {
		return nil, err
	}
	if l.GetStatPrefix() == "" {
		return nil, fmt.Errorf("local_ratelimit: stat_prefix: required")
	}
	r := &rules{statPrefix: l.GetStatPrefix(), status: 429, xHeaders: l.GetEnableXRatelimitHeaders() == ratelimitv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03}
	if c := l.GetStatus().GetCode(); c >= 400 {
		r.status = int(c)
	}
	var err error
	if r.enabled, err = fraction("filter_enabled", l.GetFilterEnabled()); err != nil {
		return nil, err
	}
	if r.enforced, err = fraction("filter_enforced", l.GetFilterEnforced()); err != nil {
		return nil, err
	}
	t := now()
	if tb := l.GetTokenBucket(); tb != nil {
		sp, err := bucketSpec("token_bucket", tb)
		if err != nil {
			return nil, err
		}
		r.def = &sp
		if l.GetLocalRateLimitPerDownstreamConnection() {
			r.perConn = newTable(maxConnBuckets)
		} else {
			r.defBucket = newBucket(r.def, t)
		}
	} else if l.GetLocalRateLimitPerDownstreamConnection() {
		return nil, fmt.Errorf("local_ratelimit: local_rate_limit_per_downstream_connection: needs token_bucket")
	}
	r.alwaysDefault = l.GetAlwaysConsumeDefaultTokenBucket() == nil || l.GetAlwaysConsumeDefaultTokenBucket().GetValue()
	if r.respAdd, err = headerOps("response_headers_to_add", l.GetResponseHeadersToAdd()); err != nil {
		return nil, err
	}
	if r.reqAddNotEnforced, err = headerOps("request_headers_to_add_when_not_enforced", l.GetRequestHeadersToAddWhenNotEnforced()); err != nil {
		return nil, err
	}
	dynMax := 20
	if v := l.GetMaxDynamicDescriptors(); v != nil {
		dynMax = int(v.GetValue())
	}
	descs, err := descriptors(l.GetDescriptors(), dynMax, t)
	if err != nil {
		return nil, err
	}
	if len(descs) > 0 && l.GetLocalRateLimitPerDownstreamConnection() {
		return nil, fmt.Errorf("local_ratelimit: descriptors: not supported with local_rate_limit_per_downstream_connection")
	}
	if len(descs) > 0 && len(l.GetRateLimits()) == 0 {
		return nil, fmt.Errorf("local_ratelimit: descriptors: need rate_limits (a route's own rate_limits are not supported)")
	}
	for i, rl := range l.GetRateLimits() {
		p := fmt.Sprintf("rate_limits[%d]", i)
		var out rateLimit
		var keys []string
		if len(rl.GetActions()) == 0 || len(rl.GetActions()) > maxEntries {
			return nil, fmt.Errorf("local_ratelimit: %s.actions: 1 to %d actions", p, maxEntries)
		}
		for j, a := range rl.GetActions() {
			act, err := newAction(fmt.Sprintf("%s.actions[%d]", p, j), a)
			if err != nil {
				return nil, err
			}
			out.actions = append(out.actions, act)
			keys = append(keys, act.key)
		}
		for _, d := range descs {
			if slicesEqual(d.keys, keys) {
				out.cands = append(out.cands, d)
			}
		}
		r.limits = append(r.limits, out)
	}
	return r, nil
}

// maxConnBuckets bounds the per-connection buckets of one config; see table.
const maxConnBuckets = 1 << 16

func newAction(p string, a *routev3.RateLimit_Action) (action, error) {
	switch s := a.GetActionSpecifier().(type) {
	case *routev3.RateLimit_Action_RemoteAddress_:
		return action{kind: actRemoteAddress, key: "remote_address"}, nil
	case *routev3.RateLimit_Action_GenericKey_:
		key := s.GenericKey.GetDescriptorKey()
		if key == "" {
			key = "generic_key"
		}
		if s.GenericKey.GetDescriptorValue() == "" {
			return action{}, fmt.Errorf("local_ratelimit: %s.generic_key.descriptor_value: required", p)
		}
		return action{kind: actGenericKey, key: key, value: s.GenericKey.GetDescriptorValue()}, nil
	case *routev3.RateLimit_Action_RequestHeaders_:
		name := strings.ToLower(s.RequestHeaders.GetHeaderName())
		if name == "" || s.RequestHeaders.GetDescriptorKey() == "" {
			return action{}, fmt.Errorf("local_ratelimit: %s.request_headers: header_name and descriptor_key required", p)
		}
		return action{kind: actRequestHeader, key: s.RequestHeaders.GetDescriptorKey(), header: name}, nil
	}
	return action{}, fmt.Errorf("local_ratelimit: %s: one action required", p)
}

func descriptors(ds []*ratelimitv3.LocalRateLimitDescriptor, dynMax int, t time.Duration) ([]*descriptor, error) {
	var out []*descriptor
	for i, d := range ds {
		p := fmt.Sprintf("descriptors[%d]", i)
		if len(d.GetEntries()) == 0 || len(d.GetEntries()) > maxEntries {
			return nil, fmt.Errorf("local_ratelimit: %s.entries: 1 to %d entries", p, maxEntries)
		}
		sp, err := bucketSpec(p+".token_bucket", d.GetTokenBucket())
		if err != nil {
			return nil, err
		}
		nd := &descriptor{sp: sp}
		for j, e := range d.GetEntries() {
			if e.GetKey() == "" {
				return nil, fmt.Errorf("local_ratelimit: %s.entries[%d].key: required", p, j)
			}
			nd.keys = append(nd.keys, e.GetKey())
			nd.values = append(nd.values, e.GetValue())
			nd.dynamic = nd.dynamic || e.GetValue() == ""
		}
		for _, prev := range out {
			if slicesEqual(prev.keys, nd.keys) && slicesEqual(prev.values, nd.values) {
				return nil, fmt.Errorf("local_ratelimit: %s: duplicate descriptor", p)
			}
		}
		if nd.dynamic {
			if dynMax <= 0 {
				return nil, fmt.Errorf("local_ratelimit: max_dynamic_descriptors: must be above 0 with a wildcard descriptor")
			}
			nd.dyn = newTable(dynMax)
		} else {
			nd.b = newBucket(&nd.sp, t)
		}
		out = append(out, nd)
	}
	return out, nil
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func bucketSpec(p string, tb *typev3.TokenBucket) (spec, error) {
	if tb == nil {
		return spec{}, fmt.Errorf("local_ratelimit: %s: required", p)
	}
	sp := spec{max: tb.GetMaxTokens(), perFill: 1}
	if sp.max == 0 {
		return spec{}, fmt.Errorf("local_ratelimit: %s.max_tokens: must be above 0", p)
	}
	if v := tb.GetTokensPerFill(); v != nil {
		if sp.perFill = v.GetValue(); sp.perFill == 0 {
			return spec{}, fmt.Errorf("local_ratelimit: %s.tokens_per_fill: must be above 0", p)
		}
	}
	fi := tb.GetFillInterval()
	if err := fi.CheckValid(); fi == nil || err != nil {
		return spec{}, fmt.Errorf("local_ratelimit: %s.fill_interval: required", p)
	}
	if sp.interval = fi.AsDuration(); sp.interval < minFillInterval {
		return spec{}, fmt.Errorf("local_ratelimit: %s.fill_interval: %v is below Envoy's minimum of 50ms", p, sp.interval)
	}
	return sp, nil
}

const minFillInterval = 50 * time.Millisecond

func fraction(field string, rp *corev3.RuntimeFractionalPercent) (percent, error) {
	if rp == nil {
		return percent{0, 100}, nil
	}
	p := rp.GetDefaultValue()
	if p == nil {
		return percent{}, fmt.Errorf("local_ratelimit: %s.default_value: required", field)
	}
	var den uint32
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		den = 100
	case typev3.FractionalPercent_TEN_THOUSAND:
		den = 10000
	case typev3.FractionalPercent_MILLION:
		den = 1000000
	default:
		return percent{}, fmt.Errorf("local_ratelimit: %s.default_value.denominator: %s not supported", field, p.GetDenominator())
	}
	return percent{min(p.GetNumerator(), den), den}, nil
}

func headerOps(field string, hs []*corev3.HeaderValueOption) ([]headerOp, error) {
	var out []headerOp
	for i, h := range hs {
		p := fmt.Sprintf("%s[%d].header", field, i)
		name := strings.ToLower(h.GetHeader().GetKey())
		if name == "" || strings.HasPrefix(name, ":") || name == "host" {
			return nil, fmt.Errorf("local_ratelimit: %s.key: %q cannot be set", p, h.GetHeader().GetKey())
		}
		v := h.GetHeader().GetValue()
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("local_ratelimit: %s.value: invalid character", p)
		}
		if strings.Contains(v, "%") {
			return nil, fmt.Errorf("local_ratelimit: %s.value: %%VARIABLE%% substitution not supported", p)
		}
		out = append(out, headerOp{name: name, value: v, action: h.GetAppendAction()})
	}
	return out, nil
}

// lrStats are the filter's counters under its chain's scope.
type lrStats struct{ enabled, enforced, rateLimited, ok *stats.Counter }

// unscoped counts for a config no connection manager has scoped (tests).
var unscoped = newStats(stats.NewStore().Scope(""), "unscoped")

func newStats(sc *stats.Scope, prefix string) *lrStats {
	p := prefix + ".http_local_rate_limit."
	return &lrStats{
		enabled: sc.Counter(p + "enabled"), enforced: sc.Counter(p + "enforced"),
		rateLimited: sc.Counter(p + "rate_limited"), ok: sc.Counter(p + "ok"),
	}
}

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	return &Config{r: c.r, stats: newStats(sc, c.r.statPrefix)}
}
