package rbac_test

import (
	"strings"
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/rbac"
)

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yaml     string
		perRoute bool
		wantErr  string
	}{
		{name: "empty config", yaml: `{}`},
		{name: "every supported rule", yaml: `
rules:
  action: DENY
  policies:
    p:
      permissions:
      - and_rules: {rules: [{header: {name: ":method", exact_match: GET}}, {url_path: {path: {safe_regex: {regex: "/a.*"}}}}]}
      - or_rules: {rules: [{destination_port: 443}, {destination_port_range: {start: 8000, end: 9000}}]}
      - not_rule: {destination_ip: {address_prefix: "::1", prefix_len: 128}}
      - requested_server_name: {suffix: .example}
      principals:
      - and_ids: {ids: [{source_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}, {direct_remote_ip: {address_prefix: 10.1.0.0, prefix_len: 16}}]}
      - or_ids: {ids: [{remote_ip: {address_prefix: "2001:db8::", prefix_len: 32}}, {header: {name: x-user, present_match: true}}]}
      - not_id: {url_path: {path: {prefix: /admin}}}
      - authenticated: {principal_name: {exact: "spiffe://a"}}
rules_stat_prefix: "enforced."
shadow_rules: {action: LOG}
shadow_rules_stat_prefix: "s."`},
		{name: "per-route", perRoute: true, yaml: `{rbac: {rules: {action: ALLOW}}}`},
		{name: "per-route without rbac", perRoute: true, yaml: `{}`},
		{name: "metadata principal", yaml: `{rules: {policies: {p: {permissions: [{any: true}], principals: [{metadata: {filter: f}}]}}}}`, wantErr: `rbac: rules.policies["p"].principals[0].metadata: not supported`},
		{name: "metadata permission in a nested rule", yaml: `{rules: {policies: {p: {permissions: [{and_rules: {rules: [{any: true}, {metadata: {filter: f}}]}}], principals: [{any: true}]}}}}`, wantErr: `rules.policies["p"].permissions[0].and_rules.rules[1].metadata: not supported`},
		{name: "condition", yaml: `{rules: {policies: {p: {permissions: [{any: true}], principals: [{any: true}], condition: {const_expr: {bool_value: true}}}}}}`, wantErr: `rules.policies["p"].condition: not supported`},
		{name: "matcher", yaml: `{matcher: {}}`, wantErr: "rbac: matcher: not supported"},
		{name: "track_per_rule_stats", yaml: `{track_per_rule_stats: true}`, wantErr: "track_per_rule_stats: not supported"},
		{name: "per-route metadata", perRoute: true, yaml: `{rbac: {rules: {policies: {p: {permissions: [{metadata: {filter: f}}], principals: [{any: true}]}}}}}`, wantErr: `rbac.rules.policies["p"].permissions[0].metadata: not supported`},
		{name: "bad CIDR", yaml: `{rules: {policies: {p: {permissions: [{any: true}], principals: [{remote_ip: {address_prefix: 10.0.0, prefix_len: 8}}]}}}}`, wantErr: `rules.policies["p"].principals[0].remote_ip.address_prefix: "10.0.0" is not an IP address`},
		{name: "prefix too long", yaml: `{rules: {policies: {p: {permissions: [{any: true}], principals: [{source_ip: {address_prefix: 10.0.0.0, prefix_len: 33}}]}}}}`, wantErr: `principals[0].source_ip.prefix_len: 33 is longer`},
		{name: "no principals", yaml: `{rules: {policies: {p: {permissions: [{any: true}]}}}}`, wantErr: `rules.policies["p"].principals: at least one required`},
		{name: "no permissions", yaml: `{rules: {policies: {p: {principals: [{any: true}]}}}}`, wantErr: `rules.policies["p"].permissions: at least one required`},
		{name: "empty rule", yaml: `{rules: {policies: {p: {permissions: [{}], principals: [{any: true}]}}}}`, wantErr: `permissions[0]: a rule is required`},
		{name: "bad regex", yaml: `{rules: {policies: {p: {permissions: [{url_path: {path: {safe_regex: {regex: "("}}}}], principals: [{any: true}]}}}}`, wantErr: `permissions[0].url_path.path: safe_regex.regex:`},
		{name: "bad header name", yaml: `{rules: {policies: {p: {permissions: [{header: {name: "a b", present_match: true}}], principals: [{any: true}]}}}}`, wantErr: `permissions[0].header.name:`},
		{name: "bad port range", yaml: `{rules: {policies: {p: {permissions: [{destination_port_range: {start: 10, end: 5}}], principals: [{any: true}]}}}}`, wantErr: `destination_port_range: [10, 5) is not a port range`},
		{name: "any false", yaml: `{rules: {policies: {p: {permissions: [{any: false}], principals: [{any: true}]}}}}`, wantErr: `permissions[0].any: must be true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.perRoute {
				m := &rbacv3.RBACPerRoute{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = rbac.Factory{}.NewOverride(m)
			} else {
				m := &rbacv3.RBAC{}
				if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
					t.Fatal(err)
				}
				_, err = rbac.Factory{}.NewConfig(m)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
