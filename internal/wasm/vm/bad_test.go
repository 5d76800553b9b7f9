package vm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
	"github.com/nuncio-gw/nuncio/internal/wasm/runtime"
	"github.com/nuncio-gw/nuncio/internal/wasm/vm"
	"github.com/nuncio-gw/nuncio/internal/wasm/wasmtest"
)

func TestBadPluginRejectedAtLoad(t *testing.T) {
	h := testHost(t)
	code := wasmtest.Build(t, "bad")
	for _, tc := range []struct {
		name, config, wantErr string
	}{
		{name: "trap in on_configure", config: "trap-configure", wantErr: "proxy_on_configure: wasm: trap"},
		{name: "configuration refused", config: "refuse", wantErr: "refused its configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := h.Load(context.Background(), code, vm.Config{Name: "bad", Config: []byte(tc.config), Log: &logRecorder{}})
			if err == nil {
				p.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `wasm plugin "bad"`) {
				t.Errorf("error %q, want it to name the plugin and contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestBadInstanceReplaced: a stream whose instance traps or overruns its deadline fails
// alone; the instance is dropped and the next stream gets a fresh one.
func TestBadInstanceReplaced(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		deadline     time.Duration
		wantErr      error
		wantText     string
	}{
		{name: "trap", config: "trap", wantText: "wasm: trap"},
		{name: "infinite loop hits the deadline", config: "loop", deadline: 200 * time.Millisecond, wantErr: abi.ErrDeadline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, log := load(t, "bad", vm.Config{Config: []byte(tc.config), Deadline: tc.deadline})
			for round := range 2 {
				s, err := p.NewStream(context.Background())
				if err != nil {
					t.Fatalf("round %d: new stream: %v", round, err)
				}
				if a := s.OnRequestHeaders(abi.HeadersOf(requestHeaders()), true); a != vm.ActionFail {
					t.Fatalf("round %d: action %v, want fail", round, a)
				}
				err = s.Err()
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("round %d: error %v, want %v %q", round, err, tc.wantErr, tc.wantText)
				}
				// A failed stream refuses further callbacks without touching the instance.
				if a := s.OnResponseHeaders(abi.HeadersOf(requestHeaders()), true); a != vm.ActionFail {
					t.Errorf("round %d: callback after failure: %v", round, a)
				}
				s.Close()
				if idle, total := p.Instances(); idle != 0 || total != 0 {
					t.Errorf("round %d: %d idle of %d instances after a failure, want the instance dropped", round, idle, total)
				}
			}
			log.waitLog(t, "instance replaced")
		})
	}
}

func TestUnboundedAllocationHitsMemoryCap(t *testing.T) {
	h, err := vm.NewHost(context.Background(), runtime.Config{CacheDir: cacheDirFor(t), MemoryLimitPages: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	p, log := loadOn(t, h, "bad", vm.Config{Config: []byte("alloc"), Deadline: 30 * time.Second})
	s, err := p.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := s.OnRequestHeaders(abi.HeadersOf(requestHeaders()), true); a != vm.ActionFail {
		t.Fatalf("action %v, want fail", a)
	}
	if errors.Is(s.Err(), abi.ErrDeadline) {
		t.Errorf("error %v: the memory cap should have stopped it, not the deadline", s.Err())
	}
	// The guest's runtime reports it on its stderr, which the host logs.
	log.waitLog(t, "out of memory")
	s.Close()
}

func TestOutOfRangePointers(t *testing.T) {
	p, log := load(t, "bad", vm.Config{Config: []byte("badptr")})
	s, err := p.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if a := s.OnRequestHeaders(abi.HeadersOf(requestHeaders("host", "x")), true); a != vm.ActionContinue {
		t.Fatalf("action %v (%v), want continue: bad pointers are errors for the guest, not traps", a, s.Err())
	}
	// proxy_log, get_buffer_bytes (x2), get_header_map_pairs, get_header_map_value (x2) and
	// add_header_map_value get InvalidMemoryAccess (6); set_header_map_pairs with lengths
	// past its buffer BadArgument (2); set_shared_data, http_call and send_local_response 6.
	log.waitLog(t, "statuses: 6 6 6 6 6 6 6 2 6 6 6")
	if s.Local().Sent {
		t.Error("a local response with a bad body pointer was recorded")
	}
}
