package strict_test

import (
	"testing"

	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
)

func TestCheck(t *testing.T) {
	fields := strict.Fields{
		"envoy.config.rbac.v3.RBAC":           {"action", "policies"},
		"envoy.config.rbac.v3.Policy":         {"permissions", "principals"},
		"envoy.config.rbac.v3.Permission":     {"any", "and_rules"},
		"envoy.config.rbac.v3.Permission.Set": {"rules"},
		"envoy.config.rbac.v3.Principal":      {"any"},
	}
	for _, tc := range []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "all supported", yaml: `{action: DENY, policies: {a: {permissions: [{and_rules: {rules: [{any: true}]}}], principals: [{any: true}]}}}`},
		{name: "top level", yaml: `{audit_logging_options: {}}`, wantErr: "f: audit_logging_options: not supported"},
		{name: "in a map and a list", yaml: `{policies: {a: {permissions: [{any: true}], principals: [{any: true}, {remote_ip: {}}]}}}`, wantErr: `f: policies["a"].principals[1].remote_ip: not supported`},
		{name: "first map key in order", yaml: `{policies: {b: {principals: [{header: {}}]}, a: {principals: [{url_path: {}}]}}}`, wantErr: `f: policies["a"].principals[0].url_path: not supported`},
		{name: "nested list", yaml: `{policies: {a: {permissions: [{and_rules: {rules: [{any: true}, {url_path: {}}]}}]}}}`, wantErr: `f: policies["a"].permissions[0].and_rules.rules[1].url_path: not supported`},
		{name: "unlisted field of a list element", yaml: `{policies: {a: {permissions: [{header: {name: x}}]}}}`, wantErr: `f: policies["a"].permissions[0].header: not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &rbacconfigv3.RBAC{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			err := strict.Check("f", proto.Message(m), fields)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
		})
	}
}
