package rbac

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/matcher"
)

// action is what a matching policy does.
type action uint8

const (
	actionAllow action = iota
	actionDeny
	actionLog
)

// engine is a compiled envoy.config.rbac.v3.RBAC.
type engine struct {
	action   action
	policies []policy // in lexicographic order of name, as Envoy evaluates them
	// noneDetails is the response details of a request denied for matching no policy.
	noneDetails string
}

type policy struct {
	name        string
	permissions node // OR of the policy's permissions
	principals  node // OR of its principals
	details     string
}

// node is one compiled permission or principal. Nodes take the stream and its headers, not a
// request struct, so that a call through the interface does not make the arguments escape.
type node interface {
	match(s *httpfilter.Stream, h *header.Map) bool
}

// evaluate returns whether the request is allowed and the policy that decided it (nil when
// none matched).
func (e *engine) evaluate(s *httpfilter.Stream, h *header.Map) (bool, *policy) {
	for i := range e.policies {
		p := &e.policies[i]
		if p.permissions.match(s, h) && p.principals.match(s, h) {
			return e.action != actionDeny, p
		}
	}
	return e.action != actionAllow, nil
}

type anyNode struct{}

func (anyNode) match(*httpfilter.Stream, *header.Map) bool { return true }

type notNode struct{ n node }

func (n notNode) match(s *httpfilter.Stream, h *header.Map) bool { return !n.n.match(s, h) }

type andNode []node

func (a andNode) match(s *httpfilter.Stream, h *header.Map) bool {
	for _, n := range a {
		if !n.match(s, h) {
			return false
		}
	}
	return true
}

type orNode []node

func (o orNode) match(s *httpfilter.Stream, h *header.Map) bool {
	for _, n := range o {
		if n.match(s, h) {
			return true
		}
	}
	return false
}

// addrSource says which address of the stream a CIDR node tests.
type addrSource uint8

const (
	srcRemote       addrSource = iota // remote_ip: after trusted X-Forwarded-For
	srcDirectRemote                   // direct_remote_ip and source_ip: the TCP peer
	srcLocal                          // destination_ip
)

type cidrNode struct {
	src addrSource
	set *ipSet
}

func (c *cidrNode) match(s *httpfilter.Stream, _ *header.Map) bool {
	var a netip.Addr
	switch c.src {
	case srcRemote:
		a = s.Downstream.RemoteAddr.Addr()
	case srcDirectRemote:
		a = s.Downstream.DirectRemoteAddr.Addr()
	case srcLocal:
		a = s.Downstream.LocalAddr.Addr()
	}
	return c.set.contains(a)
}

type headerNode struct{ m matcher.Header }

func (n *headerNode) match(_ *httpfilter.Stream, h *header.Map) bool { return n.m.Match(h) }

type pathNode struct{ m matcher.Path }

func (n *pathNode) match(_ *httpfilter.Stream, h *header.Map) bool { return n.m.Match(h.Path) }

type portNode struct{ lo, hi uint32 } // [lo, hi)

func (n portNode) match(s *httpfilter.Stream, _ *header.Map) bool {
	p := uint32(s.Downstream.LocalAddr.Port())
	return p >= n.lo && p < n.hi
}

type serverNameNode struct{ m matcher.String }

func (n *serverNameNode) match(s *httpfilter.Stream, _ *header.Map) bool {
	sni := ""
	if s.Downstream.TLS != nil {
		sni = s.Downstream.TLS.ServerName
	}
	return n.m.Match(sni)
}

// authnNode is Envoy's authenticated principal: any TLS connection when m is nil, else the peer
// certificate's URI SANs, then DNS SANs, then its subject.
type authnNode struct{ m *matcher.String }

func (n *authnNode) match(s *httpfilter.Stream, _ *header.Map) bool {
	tls := s.Downstream.TLS
	if tls == nil {
		return false
	}
	if n.m == nil {
		return true
	}
	if len(tls.PeerCertificates) == 0 {
		return false
	}
	return n.matchCert(tls.PeerCertificates[0])
}

func (n *authnNode) matchCert(c *x509.Certificate) bool {
	for _, u := range c.URIs {
		if n.m.Match(u.String()) {
			return true
		}
	}
	for _, d := range c.DNSNames {
		if n.m.Match(d) {
			return true
		}
	}
	return n.m.Match(c.Subject.String())
}

// compile builds an engine. p is the field path of the RBAC message, for errors.
func compile(p string, r *rbacconfigv3.RBAC) (*engine, error) {
	e := &engine{noneDetails: "rbac_access_denied_matched_policy[none]"}
	switch r.GetAction() {
	case rbacconfigv3.RBAC_ALLOW:
		e.action = actionAllow
	case rbacconfigv3.RBAC_DENY:
		e.action = actionDeny
	case rbacconfigv3.RBAC_LOG:
		e.action = actionLog
	default:
		return nil, fmt.Errorf("%saction: %s not supported", p, r.GetAction())
	}
	names := make([]string, 0, len(r.GetPolicies()))
	for n := range r.GetPolicies() {
		names = append(names, n)
	}
	sortStrings(names)
	for _, name := range names {
		pp := fmt.Sprintf("%spolicies[%q].", p, name)
		pol := r.GetPolicies()[name]
		if len(pol.GetPermissions()) == 0 {
			return nil, fmt.Errorf("%spermissions: at least one required", pp)
		}
		if len(pol.GetPrincipals()) == 0 {
			return nil, fmt.Errorf("%sprincipals: at least one required", pp)
		}
		perms, err := permissions(pp+"permissions", pol.GetPermissions())
		if err != nil {
			return nil, err
		}
		prins, err := principals(pp+"principals", pol.GetPrincipals())
		if err != nil {
			return nil, err
		}
		e.policies = append(e.policies, policy{
			name: name, permissions: perms, principals: prins,
			details: "rbac_access_denied_matched_policy[" + name + "]",
		})
	}
	return e, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func idx(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

// cidrs gathers CIDR ranges of one source into a set; an OR list's ranges of one source become
// one node.
type cidrGroup struct {
	src      addrSource
	prefixes []netip.Prefix
}

// orOf builds an OR over nodes, with the CIDR ranges of each source merged into one set node
// placed first (cheap, and usually the deciding test).
func orOf(groups []cidrGroup, rest []node) node {
	var out orNode
	for _, g := range groups {
		if len(g.prefixes) > 0 {
			out = append(out, &cidrNode{src: g.src, set: newIPSet(g.prefixes)})
		}
	}
	out = append(out, rest...)
	if len(out) == 1 {
		return out[0]
	}
	return out
}

func addCIDR(groups []cidrGroup, src addrSource, p string, c *corev3.CidrRange) ([]cidrGroup, error) {
	pr, err := parseCIDR(c)
	if err != nil {
		return nil, fmt.Errorf("%s.%w", p, err)
	}
	for i := range groups {
		if groups[i].src == src {
			groups[i].prefixes = append(groups[i].prefixes, pr)
			return groups, nil
		}
	}
	return append(groups, cidrGroup{src: src, prefixes: []netip.Prefix{pr}}), nil
}

func principals(p string, ids []*rbacconfigv3.Principal) (node, error) {
	var groups []cidrGroup
	var rest []node
	for i, id := range ids {
		ip := idx(p, i)
		var err error
		switch v := id.GetIdentifier().(type) {
		case *rbacconfigv3.Principal_DirectRemoteIp:
			groups, err = addCIDR(groups, srcDirectRemote, ip+".direct_remote_ip", v.DirectRemoteIp)
		case *rbacconfigv3.Principal_SourceIp:
			groups, err = addCIDR(groups, srcDirectRemote, ip+".source_ip", v.SourceIp)
		case *rbacconfigv3.Principal_RemoteIp:
			groups, err = addCIDR(groups, srcRemote, ip+".remote_ip", v.RemoteIp)
		default:
			var n node
			if n, err = principal(ip, id); err == nil {
				rest = append(rest, n)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return orOf(groups, rest), nil
}

func principal(p string, id *rbacconfigv3.Principal) (node, error) {
	switch v := id.GetIdentifier().(type) {
	case *rbacconfigv3.Principal_Any:
		if !v.Any {
			return nil, fmt.Errorf("%s.any: must be true", p)
		}
		return anyNode{}, nil
	case *rbacconfigv3.Principal_AndIds:
		var and andNode
		for i, sub := range v.AndIds.GetIds() {
			n, err := principals(idx(p+".and_ids.ids", i), []*rbacconfigv3.Principal{sub})
			if err != nil {
				return nil, err
			}
			and = append(and, n)
		}
		if len(and) == 0 {
			return nil, fmt.Errorf("%s.and_ids.ids: at least one required", p)
		}
		return and, nil
	case *rbacconfigv3.Principal_OrIds:
		if len(v.OrIds.GetIds()) == 0 {
			return nil, fmt.Errorf("%s.or_ids.ids: at least one required", p)
		}
		return principals(p+".or_ids.ids", v.OrIds.GetIds())
	case *rbacconfigv3.Principal_NotId:
		n, err := principals(p+".not_id", []*rbacconfigv3.Principal{v.NotId})
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case *rbacconfigv3.Principal_DirectRemoteIp, *rbacconfigv3.Principal_SourceIp, *rbacconfigv3.Principal_RemoteIp:
		return principals(p, []*rbacconfigv3.Principal{id})
	case *rbacconfigv3.Principal_Authenticated_:
		n := &authnNode{}
		if sm := v.Authenticated.GetPrincipalName(); sm != nil {
			m, err := matcher.NewString(sm)
			if err != nil {
				return nil, fmt.Errorf("%s.authenticated.principal_name: %w", p, err)
			}
			n.m = &m
		}
		return n, nil
	case *rbacconfigv3.Principal_Header:
		m, err := matcher.NewHeader(v.Header)
		if err != nil {
			return nil, fmt.Errorf("%s.header.%w", p, err)
		}
		return &headerNode{m}, nil
	case *rbacconfigv3.Principal_UrlPath:
		m, err := matcher.NewPath(v.UrlPath)
		if err != nil {
			return nil, fmt.Errorf("%s.url_path.%w", p, err)
		}
		return &pathNode{m}, nil
	case nil:
		return nil, fmt.Errorf("%s: an identifier is required", p)
	}
	return nil, fmt.Errorf("%s: not supported", p)
}

func permissions(p string, rules []*rbacconfigv3.Permission) (node, error) {
	var groups []cidrGroup
	var rest []node
	for i, r := range rules {
		rp := idx(p, i)
		if v, ok := r.GetRule().(*rbacconfigv3.Permission_DestinationIp); ok {
			var err error
			if groups, err = addCIDR(groups, srcLocal, rp+".destination_ip", v.DestinationIp); err != nil {
				return nil, err
			}
			continue
		}
		n, err := permission(rp, r)
		if err != nil {
			return nil, err
		}
		rest = append(rest, n)
	}
	return orOf(groups, rest), nil
}

func permission(p string, r *rbacconfigv3.Permission) (node, error) {
	switch v := r.GetRule().(type) {
	case *rbacconfigv3.Permission_Any:
		if !v.Any {
			return nil, fmt.Errorf("%s.any: must be true", p)
		}
		return anyNode{}, nil
	case *rbacconfigv3.Permission_AndRules:
		var and andNode
		for i, sub := range v.AndRules.GetRules() {
			n, err := permissions(idx(p+".and_rules.rules", i), []*rbacconfigv3.Permission{sub})
			if err != nil {
				return nil, err
			}
			and = append(and, n)
		}
		if len(and) == 0 {
			return nil, fmt.Errorf("%s.and_rules.rules: at least one required", p)
		}
		return and, nil
	case *rbacconfigv3.Permission_OrRules:
		if len(v.OrRules.GetRules()) == 0 {
			return nil, fmt.Errorf("%s.or_rules.rules: at least one required", p)
		}
		return permissions(p+".or_rules.rules", v.OrRules.GetRules())
	case *rbacconfigv3.Permission_NotRule:
		n, err := permissions(p+".not_rule", []*rbacconfigv3.Permission{v.NotRule})
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case *rbacconfigv3.Permission_DestinationIp:
		return permissions(p, []*rbacconfigv3.Permission{r})
	case *rbacconfigv3.Permission_DestinationPort:
		if v.DestinationPort > 65535 {
			return nil, fmt.Errorf("%s.destination_port: %d out of range", p, v.DestinationPort)
		}
		return portNode{v.DestinationPort, v.DestinationPort + 1}, nil
	case *rbacconfigv3.Permission_DestinationPortRange:
		lo, hi := v.DestinationPortRange.GetStart(), v.DestinationPortRange.GetEnd()
		if lo < 0 || hi > 65536 || lo >= hi {
			return nil, fmt.Errorf("%s.destination_port_range: [%d, %d) is not a port range", p, lo, hi)
		}
		return portNode{uint32(lo), uint32(hi)}, nil
	case *rbacconfigv3.Permission_Header:
		m, err := matcher.NewHeader(v.Header)
		if err != nil {
			return nil, fmt.Errorf("%s.header.%w", p, err)
		}
		return &headerNode{m}, nil
	case *rbacconfigv3.Permission_UrlPath:
		m, err := matcher.NewPath(v.UrlPath)
		if err != nil {
			return nil, fmt.Errorf("%s.url_path.%w", p, err)
		}
		return &pathNode{m}, nil
	case *rbacconfigv3.Permission_RequestedServerName:
		m, err := matcher.NewString(v.RequestedServerName)
		if err != nil {
			return nil, fmt.Errorf("%s.requested_server_name: %w", p, err)
		}
		return &serverNameNode{m}, nil
	case nil:
		return nil, fmt.Errorf("%s: a rule is required", p)
	}
	return nil, fmt.Errorf("%s: not supported", p)
}
