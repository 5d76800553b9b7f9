package decode

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

var (
	_ = allow(&routev3.RouteAction_HashPolicy{}, "header", "cookie", "connection_properties",
		"query_parameter", "terminal")
	_ = allow(&routev3.RouteAction_HashPolicy_Header{}, "header_name")
	_ = allow(&routev3.RouteAction_HashPolicy_Cookie{}, "name", "ttl", "path")
	_ = allow(&routev3.RouteAction_HashPolicy_ConnectionProperties{}, "source_ip")
	_ = allow(&routev3.RouteAction_HashPolicy_QueryParameter{}, "name")
)

// hashPolicies decodes a route's hash_policy list.
func hashPolicies(p path, hs []*routev3.RouteAction_HashPolicy) ([]model.HashPolicy, error) {
	var out []model.HashPolicy
	for i, h := range hs {
		hp := p.index(i)
		m := model.HashPolicy{Terminal: h.GetTerminal()}
		switch ps := h.GetPolicySpecifier().(type) {
		case *routev3.RouteAction_HashPolicy_Header_:
			m.Kind = model.HashHeader
			name := ps.Header.GetHeaderName()
			if name == "" || !validHeaderName(lowerHeader(name), true) {
				return nil, hp.field("header").field("header_name").errorf("%q is not a header name", name)
			}
			m.Name = lowerHeader(name)
		case *routev3.RouteAction_HashPolicy_Cookie_:
			m.Kind = model.HashCookie
			c := ps.Cookie
			if c.GetName() == "" || !validHeaderName(c.GetName(), false) {
				return nil, hp.field("cookie").field("name").errorf("%q is not a cookie name", c.GetName())
			}
			m.Name = c.GetName()
			if c.GetTtl() != nil {
				ttl, err := duration(hp.field("cookie").field("ttl"), c.GetTtl(), 0)
				if err != nil {
					return nil, err
				}
				m.CookieTTL = &ttl
			}
			if err := headerValue(c.GetPath()); err != nil || containsAny(c.GetPath(), ";,% ") {
				return nil, hp.field("cookie").field("path").errorf("%q is not a cookie path", c.GetPath())
			}
			m.CookiePath = c.GetPath()
		case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
			if !ps.ConnectionProperties.GetSourceIp() {
				return nil, hp.field("connection_properties").field("source_ip").errorf("must be true")
			}
			m.Kind = model.HashSourceIP
		case *routev3.RouteAction_HashPolicy_QueryParameter_:
			m.Kind = model.HashQueryParameter
			if ps.QueryParameter.GetName() == "" {
				return nil, hp.field("query_parameter").field("name").errorf("required")
			}
			m.Name = ps.QueryParameter.GetName()
		default:
			return nil, hp.errorf("one of header, cookie, connection_properties, query_parameter required")
		}
		out = append(out, m)
	}
	return out, nil
}

func lowerHeader(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func containsAny(s, chars string) bool {
	for i := 0; i < len(s); i++ {
		for j := 0; j < len(chars); j++ {
			if s[i] == chars[j] {
				return true
			}
		}
	}
	return false
}
