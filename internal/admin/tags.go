package admin

import (
	"regexp"
	"strings"
)

// Tag extraction turns a flat Envoy stat name into a tag-extracted name and tags, the way
// Envoy's default tag specifiers do (source/common/config/well_known_names.cc), so that
// cluster.backend.upstream_rq_503 is exported to Prometheus as
// envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="backend"} and the
// queries and dashboards written against Envoy select the same series from Nuncio.
//
// Only the extractors for stats Nuncio emits, or may soon emit, are listed: the Mongo, DynamoDB,
// Thrift and Redis ones and the worker id (Go has no worker threads) are not.

// tag is one extracted name=value pair; name is Envoy's, e.g. "envoy.cluster_name".
type tag struct {
	name, value string
}

// tagExtractor is one of Envoy's default tag specifiers, in either of its two forms: a regular
// expression whose first group is cut from the name and whose second group is the value, or a
// dot-separated token pattern where "$" is the value (cut with its dot), "*" any one token and a
// trailing "**" the rest of the name.
type tagExtractor struct {
	name string
	// prefix is the first token a name must have for the extractor to apply, or "" when any
	// name may match. Envoy runs the extractors without a prefix first, which decides the order
	// of the labels.
	prefix string
	// substr must occur in the name for the regular expression to be tried: a cheap rejection.
	substr string
	re     *regexp.Regexp
	tokens []string
	// exclude is a value that is not a tag (the admin listener's "admin").
	exclude string
}

// address matches a listener address as Envoy writes it into stat names: 127.0.0.1_8080 or
// [__1]_8080.
const address = `(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)`

func reExtractor(name, prefix, substr, re string) tagExtractor {
	return tagExtractor{name: name, prefix: prefix, substr: substr, re: regexp.MustCompile(re)}
}

func tokenExtractor(name, pattern string) tagExtractor {
	toks := strings.Split(pattern, ".")
	prefix := toks[0]
	if prefix == "$" || prefix == "*" {
		prefix = ""
	}
	return tagExtractor{name: name, prefix: prefix, tokens: toks}
}

// defaultExtractors are Envoy's, in Envoy's order.
var defaultExtractors = []tagExtractor{
	// *_rq(_<response_code>)
	reExtractor("envoy.response_code", "", "_rq_", `_rq(_(\d{3}))$`),
	// *_rq_(<response_code_class>)xx
	reExtractor("envoy.response_code_class", "", "_rq_", `_rq_((\d))xx$`),
	// http.[<stat_prefix>.]user_agent.(<user_agent>.)*
	tokenExtractor("envoy.http_user_agent", "http.*.user_agent.$.**"),
	// vhost.[<virtual host name>.]vcluster.(<virtual_cluster_name>.)*
	tokenExtractor("envoy.virtual_cluster", "vhost.*.vcluster.$.**"),
	// http.[<stat_prefix>.]fault.(<downstream_cluster>.)*
	tokenExtractor("envoy.fault_downstream_cluster", "http.*.fault.$.**"),
	// listener.[<address>.]ssl.ciphers.(<cipher>)
	reExtractor("envoy.ssl_cipher", "listener", ".ssl.ciphers.", `^listener\..*?\.ssl\.ciphers(\.([\w-]+))$`),
	// (listener|cluster).[<name>.]ssl.curves.(<curve>)
	reExtractor("envoy.ssl_curve", "", ".ssl.curves.", `^(?:listener|cluster)\..*?\.ssl\.curves(\.([\w-]+))$`),
	// (listener|cluster).[<name>.]ssl.sigalgs.(<algorithm>)
	reExtractor("envoy.ssl_sigalg", "", ".ssl.sigalgs.", `^(?:listener|cluster)\..*?\.ssl\.sigalgs(\.([\w-]+))$`),
	// (listener|cluster).[<name>.]ssl.versions.(<version>)
	reExtractor("envoy.ssl_version", "", ".ssl.versions.", `^(?:listener|cluster)\..*?\.ssl\.versions(\.(TLSv\d\.\d))$`),
	// cluster.[<cluster_name>.]ssl.ciphers.(<cipher>)
	reExtractor("envoy.ssl_cipher_suite", "cluster", ".ssl.ciphers.", `^cluster\.[^.]+\.ssl\.ciphers(\.([\w-]+))$`),
	// cluster.[<route_target_cluster>.]grpc.[<grpc_service>.](<grpc_method>.)*
	tokenExtractor("envoy.grpc_bridge_method", "cluster.*.grpc.*.$.**"),
	// cluster.[<route_target_cluster>.]grpc.(<grpc_service>.)*
	tokenExtractor("envoy.grpc_bridge_service", "cluster.*.grpc.$.**"),
	// tcp.(<stat_prefix>.)*
	tokenExtractor("envoy.tcp_prefix", "tcp.$.**"),
	// udp.(<stat_prefix>.)*
	tokenExtractor("envoy.udp_prefix", "udp.$.**"),
	// ratelimit.(<stat_prefix>.)*
	tokenExtractor("envoy.ratelimit_prefix", "ratelimit.$.**"),
	// cluster.(<cluster_name>.)*
	tokenExtractor("envoy.cluster_name", "cluster.$.**"),
	// listener.[<address>.]http.(<stat_prefix>.)*
	reExtractor("envoy.http_conn_manager_prefix", "listener", ".http.", `^listener\..*?\.http\.(([^.]+)\.)`),
	// cluster.[<cluster>.]ext_authz.(<ext_authz_prefix>.)*
	tokenExtractor("envoy.ext_authz_prefix", "cluster.*.ext_authz.$.**"),
	// http.[<http_conn_mgr_prefix>.]ext_authz.(<ext_authz_prefix>.)*
	tokenExtractor("envoy.ext_authz_prefix", "http.*.ext_authz.$.**"),
	// http.(<stat_prefix>.)*
	tokenExtractor("envoy.http_conn_manager_prefix", "http.$.**"),
	// listener.(<address|stat_prefix>.)*, except the admin listener's
	func() tagExtractor {
		e := reExtractor("envoy.listener_address", "listener", "", `^listener\.((`+address+`|[^.]+)\.)`)
		e.exclude = "admin"
		return e
	}(),
	// vhost.(<virtual host name>.)*
	tokenExtractor("envoy.virtual_host", "vhost.$.**"),
	// http.[<stat_prefix>.]rds.(<route_config_name>.)<base_stat>; a route config name may
	// contain dots, hence the whole-name match.
	reExtractor("envoy.rds_route_config", "http", ".rds.", `^http\.[^.]+\.rds\.(([\w.-]+)\.)\w+?$`),
	// vhost.[<virtual host name>.]route.(<route_stat_prefix>.)*
	tokenExtractor("envoy.route", "vhost.*.route.$.**"),
	// (<stat_prefix>.)http_local_rate_limit.*
	tokenExtractor("envoy.local_http_ratelimit_prefix", "$.http_local_rate_limit.**"),
	// local_rate_limit.(<stat_prefix>.)*
	tokenExtractor("envoy.local_network_ratelimit_prefix", "local_rate_limit.$.**"),
}

// span is a half-open byte range of the name to cut.
type span struct{ start, end int }

// extract applies the extractor to name, appending its tag and the span to cut.
func (e *tagExtractor) extract(name string, tags []tag, cut []span) ([]tag, []span) {
	if e.re != nil {
		if e.substr != "" && !strings.Contains(name, e.substr) {
			return tags, cut
		}
		m := e.re.FindStringSubmatchIndex(name)
		if m == nil || m[2] < 0 || m[4] < 0 {
			return tags, cut
		}
		value := name[m[4]:m[5]]
		if value == e.exclude {
			return tags, cut
		}
		return append(tags, tag{e.name, value}), append(cut, span{m[2], m[3]})
	}
	// Token pattern: walk the name's tokens, remembering where "$" landed.
	pos, vstart, vend := 0, -1, -1
	for i, tok := range e.tokens {
		if pos > len(name) {
			return tags, cut
		}
		if tok == "**" && i == len(e.tokens)-1 {
			if pos >= len(name) {
				return tags, cut // "**" needs at least one token
			}
			break
		}
		end := strings.IndexByte(name[pos:], '.')
		if end < 0 {
			end = len(name)
		} else {
			end += pos
		}
		got := name[pos:end]
		switch tok {
		case "$":
			vstart, vend = pos, end
		case "*":
		default:
			if got != tok {
				return tags, cut
			}
		}
		if i == len(e.tokens)-1 && end != len(name) {
			return tags, cut // the pattern ended before the name did
		}
		pos = end + 1
	}
	if vstart < 0 || vstart == vend {
		return tags, cut
	}
	cutEnd := vend + 1 // the value's trailing dot
	if cutEnd > len(name) {
		cutEnd = len(name)
	}
	return append(tags, tag{e.name, name[vstart:vend]}), append(cut, span{vstart, cutEnd})
}

// extractTags returns name's tag-extracted name and its tags, in Envoy's order: first the
// extractors that apply to any name, then those for the name's first token.
func extractTags(name string, extractors []tagExtractor) (string, []tag) {
	first := name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		first = name[:i]
	}
	var tags []tag
	var cut []span
	for pass := 0; pass < 2; pass++ {
		for i := range extractors {
			e := &extractors[i]
			if (pass == 0) != (e.prefix == "") || (pass == 1 && e.prefix != first) {
				continue
			}
			tags, cut = e.extract(name, tags, cut)
		}
	}
	if len(cut) == 0 {
		return name, tags
	}
	// Remove the union of the cut spans.
	drop := make([]bool, len(name))
	for _, c := range cut {
		for i := c.start; i < c.end; i++ {
			drop[i] = true
		}
	}
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		if !drop[i] {
			b.WriteByte(name[i])
		}
	}
	return b.String(), tags
}
