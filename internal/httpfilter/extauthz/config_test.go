package extauthz

import (
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

const validService = `"http_service": {"server_uri": {"uri": "http://auth", "cluster": "auth", "timeout": "1s"}}`

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "minimal", json: `{` + validService + `}`},
		{name: "everything supported", json: `{"transport_api_version": "V3", "failure_mode_allow": true, "failure_mode_allow_header_add": true,
			"with_request_body": {"max_request_bytes": 10, "allow_partial_message": true, "pack_as_bytes": true}, "clear_route_cache": true,
			"status_on_error": {"code": 503}, "stat_prefix": "x",
			"http_service": {"server_uri": {"uri": "http://auth:9000/x", "cluster": "auth", "timeout": "1s"}, "path_prefix": "/check",
			  "authorization_request": {"allowed_headers": {"patterns": [{"exact": "a"}, {"prefix": "b", "ignore_case": true}, {"safe_regex": {"regex": "c.*"}}]},
			    "headers_to_add": [{"key": "X-A", "value": "1"}]},
			  "authorization_response": {"allowed_upstream_headers": {"patterns": [{"suffix": "x"}]}, "allowed_upstream_headers_to_append": {"patterns": [{"contains": "y"}]},
			    "allowed_client_headers": {"patterns": [{"exact": "z"}]}, "allowed_client_headers_on_success": {"patterns": [{"exact": "w"}]}}}}`},
		{name: "grpc service", json: `{"grpc_service": {"envoy_grpc": {"cluster_name": "x", "authority": "a"}, "timeout": "1s"}, "with_request_body": {"max_request_bytes": 10, "pack_as_bytes": true}}`},
		{name: "google grpc", json: `{"grpc_service": {"google_grpc": {"target_uri": "x", "stat_prefix": "x"}}}`, wantErr: "grpc_service.google_grpc: not supported"},
		{name: "grpc initial metadata", json: `{"grpc_service": {"envoy_grpc": {"cluster_name": "x"}, "initial_metadata": [{"key": "a", "value": "b"}]}}`, wantErr: "grpc_service.initial_metadata: not supported"},
		{name: "grpc without cluster", json: `{"grpc_service": {"envoy_grpc": {}}}`, wantErr: "cluster_name: required"},
		{name: "no service", json: `{}`, wantErr: "one of http_service and grpc_service is required"},
		{name: "unsupported field", json: `{"include_peer_certificate": true, ` + validService + `}`, wantErr: "include_peer_certificate: not supported"},
		{name: "unsupported nested field", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "retry_policy": {}}}`, wantErr: "http_service.retry_policy: not supported"},
		{name: "unsupported header value field", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "authorization_request": {"headers_to_add": [{"key": "a", "raw_value": "eA=="}]}}}`, wantErr: "headers_to_add[0].raw_value: not supported"},
		{name: "no cluster", json: `{"http_service": {"server_uri": {"uri": "http://a", "timeout": "1s"}}}`, wantErr: "server_uri.cluster: required"},
		{name: "no timeout", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a"}}}`, wantErr: "server_uri.timeout: required"},
		{name: "bad uri", json: `{"http_service": {"server_uri": {"uri": "auth", "cluster": "a", "timeout": "1s"}}}`, wantErr: "server_uri.uri"},
		{name: "bad path prefix", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "path_prefix": "x"}}`, wantErr: "path_prefix"},
		{name: "path override", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "path_override": "/check?x=1"}}`},
		{name: "path override and prefix", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "path_override": "/check", "path_prefix": "/p"}}`, wantErr: "only one of"},
		{name: "bad path override", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "path_override": "check"}}`, wantErr: "path_override"},
		{name: "bad regex", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "authorization_response": {"allowed_upstream_headers": {"patterns": [{"safe_regex": {"regex": "("}}]}}}}`, wantErr: "allowed_upstream_headers.patterns[0].safe_regex.regex"},
		{name: "bad header to add", json: `{"http_service": {"server_uri": {"uri": "http://a", "cluster": "a", "timeout": "1s"}, "authorization_request": {"headers_to_add": [{"key": "a b", "value": "1"}]}}}`, wantErr: "headers_to_add[0].key"},
		{name: "bad status", json: `{"status_on_error": {"code": 1000}, ` + validService + `}`, wantErr: "status_on_error"},
		{name: "zero max bytes", json: `{"with_request_body": {}, ` + validService + `}`, wantErr: "with_request_body.max_request_bytes"},
		{name: "v2", json: `{"transport_api_version": "V2", ` + validService + `}`, wantErr: "transport_api_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &extauthzv3.ExtAuthz{}
			if err := protojson.Unmarshal([]byte(tc.json), m); err != nil {
				t.Fatal(err)
			}
			_, err := Factory{}.NewConfig(m)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewOverride(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		wantErr string
	}{
		{name: "disabled", json: `{"disabled": true}`},
		{name: "check settings", json: `{"check_settings": {"context_extensions": {"a": "b"}, "disable_request_body_buffering": true}}`},
		{name: "disabled false", json: `{"disabled": false}`, wantErr: "disabled: must be true"},
		{name: "empty", json: `{}`, wantErr: "one of disabled or check_settings"},
		{name: "client span", json: `{"check_settings": {"emit_client_span": true}}`, wantErr: "check_settings.emit_client_span: not supported"},
		{name: "grpc service", json: `{"check_settings": {"grpc_service": {"envoy_grpc": {"cluster_name": "x"}}}}`, wantErr: "grpc_service: not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &extauthzv3.ExtAuthzPerRoute{}
			if err := protojson.Unmarshal([]byte(tc.json), m); err != nil {
				t.Fatal(err)
			}
			_, err := Factory{}.NewOverride(m)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestListMatcher(t *testing.T) {
	m := &extauthzv3.AuthorizationResponse{}
	if err := protojson.Unmarshal([]byte(`{"allowed_upstream_headers": {"patterns": [{"exact": "X-User", "ignore_case": true}, {"prefix": "x-a-"}, {"safe_regex": {"regex": "x-[0-9]+"}}]}}`), m); err != nil {
		t.Fatal(err)
	}
	lm, err := compileList("p", m.GetAllowedUpstreamHeaders())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want bool
	}{
		{name: "x-user", want: true},
		{name: "x-a-b", want: true},
		{name: "x-12", want: true},
		{name: "x-12a", want: false},
		{name: "y-user", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lm.match(tc.name); got != tc.want {
				t.Errorf("match(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}
