package decode

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestStrict(t *testing.T) {
	tests := []struct {
		name    string
		msg     proto.Message
		wantErr string // "" means accepted
	}{
		{
			name: "supported fields only",
			msg:  &clusterv3.Cluster{Name: "a", ConnectTimeout: durationpb.New(1)},
		},
		{
			name:    "unsupported field named with its path",
			msg:     &clusterv3.Cluster{Name: "a", CleanupInterval: durationpb.New(1)},
			wantErr: "cleanup_interval: not supported",
		},
		{
			name: "nested unsupported field",
			msg: &clusterv3.Cluster{CircuitBreakers: &clusterv3.CircuitBreakers{
				Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}, {MaxConnectionPools: wrapperspb.UInt32(1)}},
			}},
			wantErr: "circuit_breakers.thresholds[1].max_connection_pools: not supported",
		},
		{
			name: "access log filter outside the subset",
			msg: &hcmv3.HttpConnectionManager{AccessLog: []*accesslogv3.AccessLog{{Filter: &accesslogv3.AccessLogFilter{
				FilterSpecifier: &accesslogv3.AccessLogFilter_HeaderFilter{HeaderFilter: &accesslogv3.HeaderFilter{}},
			}}}},
			wantErr: "access_log[0].filter.header_filter: not supported",
		},
		{
			name: "unsupported nested match field",
			msg: &routev3.Route{TypedPerFilterConfig: nil, Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				Grpc:          &routev3.RouteMatch_GrpcRouteMatchOptions{},
			}},
			wantErr: "match.grpc: not supported",
		},
		{
			name:    "message type outside the subset",
			msg:     &corev3.GrpcMethodList{},
			wantErr: "envoy.config.core.v3.GrpcMethodList not supported",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := strict("", tc.msg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestHeaderValue(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{name: "plain", value: "hello"},
		{name: "escaped percent", value: "100%%"},
		{name: "every variable", value: "%DOWNSTREAM_REMOTE_ADDRESS%%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%%DOWNSTREAM_LOCAL_ADDRESS%%PROTOCOL%%UPSTREAM_REMOTE_ADDRESS%%HOSTNAME%%START_TIME%"},
		{name: "request header", value: "v=%REQ(X-Forwarded-For)%"},
		{name: "start time format with percent", value: "%START_TIME(%Y-%m-%d)%"},
		{name: "unknown variable", value: "%FOO%", wantErr: "unsupported variable %FOO%"},
		{name: "variable with argument it does not take", value: "%PROTOCOL(x)%", wantErr: "unsupported variable"},
		{name: "lone percent", value: "50% off", wantErr: "unterminated variable"},
		{name: "REQ without header", value: "%REQ%", wantErr: "needs a header name"},
		{name: "unterminated argument", value: "%REQ(x", wantErr: "unterminated %REQ("},
		{name: "newline", value: "a\nb", wantErr: "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := headerValue(tc.value)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestURITemplate(t *testing.T) {
	tests := []struct {
		name     string
		template string
		wantErr  string
	}{
		{name: "literal", template: "/a/b"},
		{name: "wildcards", template: "/a/*/c/**"},
		{name: "variables", template: "/users/{id}/{rest=**}"},
		{name: "variable with pattern", template: "/{path=videos/*}/{file}"},
		{name: "suffix in last segment", template: "/media/**.m3u8"},
		{name: "variable with suffix", template: "/img/{name}.jpg"},
		{name: "no leading slash", template: "a/b", wantErr: "must start with /"},
		{name: "double star not last", template: "/**/a", wantErr: "** must be the last segment"},
		{name: "duplicate variable", template: "/{a}/{a}", wantErr: "duplicate variable"},
		{name: "bad variable name", template: "/{1a}", wantErr: "bad variable name"},
		{name: "too many variables", template: "/{a}/{b}/{c}/{d}/{e}/{f}", wantErr: "at most 5 variables"},
		{name: "empty segment", template: "/a//b", wantErr: "empty segment"},
		{name: "bad literal", template: "/a b", wantErr: "not allowed in a literal"},
		{name: "unterminated variable", template: "/{a", wantErr: "unterminated {"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := uriTemplate(tc.template)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCipherSuites(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint16
		wantErr bool
	}{
		{name: "openssl name", in: "ECDHE-RSA-AES128-GCM-SHA256", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{name: "iana name", in: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{name: "equal preference group", in: "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]",
			want: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
		{name: "unknown", in: "ECDHE-PSK-CHACHA20-POLY1305", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cipherSuites(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAllowedFieldsExist guards the tables: allow panics on a misspelt field at init, so
// reaching this test means every entry names a real field.
func TestAllowedFieldsExist(t *testing.T) {
	if len(supported) < 40 {
		t.Fatalf("only %d message types in the supported subset", len(supported))
	}
}
