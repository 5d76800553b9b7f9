package localratelimit_test

import (
	"strings"
	"testing"

	lrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/localratelimit"
)

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "bucket", yaml: `{stat_prefix: s, token_bucket: {max_tokens: 10, tokens_per_fill: 5, fill_interval: 1s}, filter_enabled: {default_value: {numerator: 50}}}`},
		{name: "descriptors", yaml: `{stat_prefix: s, rate_limits: [{actions: [{remote_address: {}}, {generic_key: {descriptor_value: v}}]}],
			descriptors: [{entries: [{key: remote_address}, {key: generic_key, value: v}], token_bucket: {max_tokens: 1, fill_interval: 1s}}], max_dynamic_descriptors: 100}`},
		{name: "per connection", yaml: `{stat_prefix: s, token_bucket: {max_tokens: 1, fill_interval: 1s}, local_rate_limit_per_downstream_connection: true}`},
		{name: "no stat prefix", yaml: `{token_bucket: {max_tokens: 1, fill_interval: 1s}}`, wantErr: "stat_prefix: required"},
		{name: "zero tokens", yaml: `{stat_prefix: s, token_bucket: {max_tokens: 0, fill_interval: 1s}}`, wantErr: "token_bucket.max_tokens: must be above 0"},
		{name: "short interval", yaml: `{stat_prefix: s, token_bucket: {max_tokens: 1, fill_interval: 0.01s}}`, wantErr: "token_bucket.fill_interval: 10ms is below"},
		{name: "runtime key", yaml: `{stat_prefix: s, filter_enabled: {default_value: {numerator: 1}, runtime_key: k}}`, wantErr: "filter_enabled.runtime_key: not supported"},
		{name: "stage", yaml: `{stat_prefix: s, stage: 1}`, wantErr: "local_ratelimit: stage: not supported"},
		{name: "vh rate limits", yaml: `{stat_prefix: s, vh_rate_limits: INCLUDE}`, wantErr: "vh_rate_limits: not supported"},
		{name: "unsupported action", yaml: `{stat_prefix: s, rate_limits: [{actions: [{destination_cluster: {}}]}]}`, wantErr: "rate_limits[0].actions[0].destination_cluster: not supported"},
		{name: "descriptors without rate_limits", yaml: `{stat_prefix: s, descriptors: [{entries: [{key: k, value: v}], token_bucket: {max_tokens: 1, fill_interval: 1s}}]}`,
			wantErr: "descriptors: need rate_limits"},
		{name: "duplicate descriptor", yaml: `{stat_prefix: s, rate_limits: [{actions: [{remote_address: {}}]}], descriptors: [{entries: [{key: k}], token_bucket: {max_tokens: 1, fill_interval: 1s}}, {entries: [{key: k}], token_bucket: {max_tokens: 2, fill_interval: 1s}}]}`,
			wantErr: "descriptors[1]: duplicate descriptor"},
		{name: "header substitution", yaml: `{stat_prefix: s, response_headers_to_add: [{header: {key: x, value: "%START_TIME%"}}]}`,
			wantErr: "response_headers_to_add[0].header.value: %VARIABLE% substitution not supported"},
		{name: "per connection needs a bucket", yaml: `{stat_prefix: s, local_rate_limit_per_downstream_connection: true}`, wantErr: "needs token_bucket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &lrlv3.LocalRateLimit{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			_, err := localratelimit.Factory{}.NewConfig(m)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
