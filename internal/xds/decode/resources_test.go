package decode_test

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// TestRouteConfigFromRDS checks the defaults that differ for a route table delivered alone:
// cluster references are resolved at request time unless validate_clusters is set.
func TestRouteConfigFromRDS(t *testing.T) {
	tests := []struct {
		name         string
		yaml         string
		wantValidate bool
		wantErr      string
	}{
		{
			name:         "validation off by default",
			yaml:         `{name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: later}}]}]}`,
			wantValidate: false,
		},
		{
			name:         "validation asked for",
			yaml:         `{name: r, validate_clusters: true, virtual_hosts: []}`,
			wantValidate: true,
		},
		{
			name:    "errors are relative to the resource",
			yaml:    `{name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: a, retry_policy: {retry_on: bogus}}}]}]}`,
			wantErr: "virtual_hosts[0].routes[0].route.retry_policy.retry_on: \"bogus\" not supported",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &routev3.RouteConfiguration{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), rc); err != nil {
				t.Fatal(err)
			}
			got, err := decode.RouteConfig(rc, testRegistry())
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want prefix %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ValidateClusters != tc.wantValidate {
				t.Errorf("ValidateClusters = %v, want %v", got.ValidateClusters, tc.wantValidate)
			}
			if got.Source != rc {
				t.Errorf("Source is not the decoded resource")
			}
		})
	}
}

func TestEndpointsFromEDS(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		wantErr string
	}{
		{name: "ip", host: "10.0.0.1"},
		{name: "host name refused", host: "backend.local", wantErr: "is not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cla := &endpointv3.ClusterLoadAssignment{
				ClusterName: "c",
				Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
							Address: tc.host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80},
						}}},
					}},
				}}}},
			}
			got, err := decode.Endpoints(cla)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || len(got[0].Endpoints) != 1 || got[0].Endpoints[0].Weight != 1 {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

func TestRoutingPriority(t *testing.T) {
	tests := []struct {
		name     string
		priority string
		wantHigh bool
	}{
		{name: "unset is default", priority: "", wantHigh: false},
		{name: "default", priority: ", priority: DEFAULT", wantHigh: false},
		{name: "high", priority: ", priority: HIGH", wantHigh: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := &routev3.RouteConfiguration{}
			y := `{name: r, virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: a` + tc.priority + `}}]}]}`
			if err := envoyconfig.Unmarshal([]byte(y), rc); err != nil {
				t.Fatal(err)
			}
			got, err := decode.RouteConfig(rc, testRegistry())
			if err != nil {
				t.Fatal(err)
			}
			if h := got.VirtualHosts[0].Routes[0].Route.HighPriority; h != tc.wantHigh {
				t.Errorf("HighPriority = %v, want %v", h, tc.wantHigh)
			}
		})
	}
}
