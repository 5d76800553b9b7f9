package vm_test

import (
	"context"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
)

// TestHigressExtensions runs a module declaring Higress's ABI 0.2.100: its header statuses,
// a local reply followed by Continue, and the host properties it steers the host with.
func TestHigressExtensions(t *testing.T) {
	p, log := load(t, "higress", vm.Config{})
	if p.ABI() != runtime.ABI02100 {
		t.Fatalf("ABI %v, want 0_2_100", p.ABI())
	}
	for _, tc := range []struct {
		name    string
		headers []string
		end     bool
		want    vm.Action
		check   func(t *testing.T, s *vm.Stream)
	}{
		{name: "continue", headers: []string{"x-action", "0"}, want: vm.ActionContinue},
		{name: "stop iteration pauses", headers: []string{"x-action", "1"}, want: vm.ActionPause},
		{name: "continue and end stream continues", headers: []string{"x-action", "2"}, want: vm.ActionContinue},
		{name: "stop all and buffer pauses", headers: []string{"x-action", "3"}, want: vm.ActionPause},
		{name: "stop all and watermark pauses", headers: []string{"x-action", "4"}, want: vm.ActionPause},
		{name: "stop all, resumed in the callback", headers: []string{"x-action", "3", "x-resume", "1"}, want: vm.ActionContinue},
		{name: "watermark, resumed in the callback", headers: []string{"x-action", "4", "x-resume", "1"}, want: vm.ActionContinue},
		{name: "local reply then continue stops", headers: []string{"x-action", "0", "x-local", "1"}, want: vm.ActionRespond,
			check: func(t *testing.T, s *vm.Stream) {
				if lr := s.Local(); lr.Status != 418 || string(lr.Body) != "local" {
					t.Errorf("local reply %d %q", lr.Status, lr.Body)
				}
			}},
		{name: "buffer limits", headers: []string{"x-decoder-limit", "8192", "x-encoder-limit", "4096"}, want: vm.ActionContinue,
			check: func(t *testing.T, s *vm.Stream) {
				if s.DecoderBufferLimit != 8192 || s.EncoderBufferLimit != 4096 {
					t.Errorf("limits %d %d, want 8192 4096", s.DecoderBufferLimit, s.EncoderBufferLimit)
				}
				log.waitLog(t, "set_decoder_buffer_limit=8192 <nil>")
			}},
		{name: "bad buffer limit ignored", headers: []string{"x-decoder-limit", "lots"}, want: vm.ActionContinue,
			check: func(t *testing.T, s *vm.Stream) {
				if s.DecoderBufferLimit != 0 {
					t.Errorf("limit %d from a bad value", s.DecoderBufferLimit)
				}
			}},
		{name: "header change asks for a new route", headers: []string{"x-set-route", "b"}, want: vm.ActionContinue,
			check: func(t *testing.T, s *vm.Stream) {
				if !s.RequestHeadersChanged || s.KeepRoute {
					t.Errorf("changed %t keep %t", s.RequestHeadersChanged, s.KeepRoute)
				}
			}},
		{name: "clear_route_cache off keeps the route", headers: []string{"x-set-route", "b", "x-keep-route", "1"}, want: vm.ActionContinue,
			check: func(t *testing.T, s *vm.Stream) {
				if !s.KeepRoute {
					t.Error("clear_route_cache off not seen")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := p.NewStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if a := s.OnRequestHeaders(abi.HeadersOf(requestHeaders(tc.headers...)), tc.end); a != tc.want {
				t.Fatalf("request headers: %v, want %v (%v)", a, tc.want, s.Err())
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}
