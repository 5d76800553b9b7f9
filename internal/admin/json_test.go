package admin

import (
	"reflect"
	"testing"
	"time"
)

func TestHealthFlagsString(t *testing.T) {
	tests := []struct {
		name  string
		flags HealthFlags
		want  string
	}{
		{name: "none", flags: 0, want: "healthy"},
		{name: "one", flags: FailedActiveHC, want: "/failed_active_hc"},
		{name: "in Envoy's order", flags: EDSStatusDraining | FailedOutlierCheck | FailedActiveHC, want: "/failed_active_hc/failed_outlier_check/eds_status_draining"},
		{name: "last", flags: ActiveHCTimeout, want: "/active_hc_timeout"},
		{
			name:  "all",
			flags: FailedActiveHC | FailedOutlierCheck | FailedEDSHealth | DegradedActiveHC | DegradedEDSHealth | PendingDynamicRemoval | PendingActiveHC | ExcludedViaImmediateHCFail | ActiveHCTimeout | EDSStatusDraining,
			want: "/failed_active_hc/failed_outlier_check/failed_eds_health/degraded_active_hc/degraded_eds_health" +
				"/pending_dynamic_removal/pending_active_hc/excluded_via_immediate_hc_fail/active_hc_timeout/eds_status_draining",
		},
		{name: "unknown bits are ignored", flags: 1<<31 | PendingActiveHC, want: "/pending_active_hc"},
		{name: "only unknown bits", flags: 1 << 31, want: "healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.flags.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	tests := []struct {
		state State
		want  string
	}{
		{state: StatePreInitializing, want: "PRE_INITIALIZING"},
		{state: StateInitializing, want: "INITIALIZING"},
		{state: StateLive, want: "LIVE"},
		{state: StateDraining, want: "DRAINING"},
		{state: State(200), want: "UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.state.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "zero", d: 0, want: "0s"},
		{name: "whole seconds", d: 600 * time.Second, want: "600s"},
		{name: "milliseconds", d: 1500 * time.Millisecond, want: "1.500s"},
		{name: "microseconds", d: 1*time.Second + 20*time.Microsecond, want: "1.000020s"},
		{name: "nanoseconds", d: 3, want: "0.000000003s"},
		{name: "negative", d: -2500 * time.Millisecond, want: "-2.500s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := durationJSON(tc.d); got != tc.want {
				t.Errorf("durationJSON(%v) = %q, want %q", tc.d, got, tc.want)
			}
		})
	}
}

func TestAddressOf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want addressJSON
	}{
		{name: "ipv4", in: "10.0.0.1:80", want: addressJSON{SocketAddress: &socketAddressJSON{Address: "10.0.0.1", PortValue: 80}}},
		{name: "ipv6", in: "[::1]:9901", want: addressJSON{SocketAddress: &socketAddressJSON{Address: "::1", PortValue: 9901}}},
		{name: "hostname", in: "backend.svc:8080", want: addressJSON{SocketAddress: &socketAddressJSON{Address: "backend.svc", PortValue: 8080}}},
		{name: "unix path", in: "/run/nuncio.sock", want: addressJSON{Pipe: &pipeJSON{Path: "/run/nuncio.sock"}}},
		{name: "abstract unix", in: "@nuncio", want: addressJSON{Pipe: &pipeJSON{Path: "@nuncio"}}},
		{name: "no port", in: "backend", want: addressJSON{SocketAddress: &socketAddressJSON{Address: "backend"}}},
		{name: "port out of range", in: "h:70000", want: addressJSON{SocketAddress: &socketAddressJSON{Address: "h:70000"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := addressOf(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("addressOf(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}
