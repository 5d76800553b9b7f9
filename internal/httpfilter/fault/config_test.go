package fault_test

import (
	"strings"
	"testing"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/fault"
)

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{name: "fixed delay", yaml: `{delay: {fixed_delay: 0.1s, percentage: {numerator: 50}}}`},
		{name: "header delay and abort", yaml: `{delay: {header_delay: {}}, abort: {header_abort: {}, percentage: {numerator: 100}}, max_active_faults: 10}`},
		{name: "grpc abort", yaml: `{abort: {grpc_status: 14, percentage: {numerator: 1, denominator: MILLION}}}`},
		{name: "bad status", yaml: `{abort: {http_status: 99}}`, wantErr: "abort.http_status: 99 out of range"},
		{name: "zero delay", yaml: `{delay: {fixed_delay: 0s}}`, wantErr: "delay.fixed_delay: must be above 0"},
		{name: "unsupported field", yaml: `{upstream_cluster: x}`, wantErr: "fault: upstream_cluster: not supported"},
		{name: "runtime key", yaml: `{abort: {http_status: 503}, abort_percent_runtime: k}`, wantErr: "abort_percent_runtime: not supported"},
		{name: "nested unsupported", yaml: `{response_rate_limit: {fixed_limit: {limit_kbps: 1}}}`, wantErr: "response_rate_limit: not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &faultv3.HTTPFault{}
			if err := envoyconfig.Unmarshal([]byte(tc.yaml), m); err != nil {
				t.Fatal(err)
			}
			_, err := fault.Factory{}.NewConfig(m)
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
