package xdsgen

import (
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const rbacName = "envoy.filters.http.rbac"

// An IP filter is the rbac filter, disabled in the chain and enabled per route with the route's ranges.
func init() {
	register(&feature{
		name: "ipfilter", order: 110,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			if !usedBy(l, func(r *ir.Route) bool { return r.IPFilter != nil }) {
				return nil
			}
			return []*hcmv3.HttpFilter{disabledFilter(rbacName, &rbacv3.RBAC{})}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if f := r.IPFilter; f != nil {
				enableFilter(out, rbacName, &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: ipRBAC(f)}})
			}
		},
	})
}

func cidrPrincipals(cidrs []string) []*rbacconfigv3.Principal {
	var out []*rbacconfigv3.Principal
	for _, c := range cidrs {
		addr, bits, _ := strings.Cut(c, "/")
		n, _ := strconv.ParseUint(bits, 10, 32)
		out = append(out, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{
			AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(n)),
		}}})
	}
	return out
}

// ipRBAC admits clients in Allow (all when empty) and not in Deny.
func ipRBAC(f *ir.IPFilter) *rbacconfigv3.RBAC {
	var ids []*rbacconfigv3.Principal
	if len(f.Allow) > 0 {
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: cidrPrincipals(f.Allow)}}})
	}
	if len(f.Deny) > 0 {
		ids = append(ids, &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_NotId{NotId: &rbacconfigv3.Principal{
			Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: cidrPrincipals(f.Deny)}},
		}}})
	}
	principal := ids[0]
	if len(ids) > 1 {
		principal = &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_AndIds{AndIds: &rbacconfigv3.Principal_Set{Ids: ids}}}
	}
	return &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_ALLOW,
		Policies: map[string]*rbacconfigv3.Policy{"source-range": {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfigv3.Principal{principal},
		}},
	}
}
