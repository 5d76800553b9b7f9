package wait

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fatalT stands for a test and records the message of Fatalf, which it does not stop at:
// the cases below end by themselves.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper()                      {}
func (f *fatalT) Fatalf(s string, args ...any) { f.msg = fmt.Sprintf(s, args...) }

func TestFor(t *testing.T) {
	tests := []struct {
		name    string
		holdsAt int32 // the call at which cond first holds
	}{
		{name: "already true", holdsAt: 1},
		{name: "true after some polls", holdsAt: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			f := &fatalT{TB: t}
			For(f, "the condition", func() bool { return calls.Add(1) >= tc.holdsAt })
			if f.msg != "" {
				t.Errorf("failed: %s", f.msg)
			}
			if got := calls.Load(); got != tc.holdsAt {
				t.Errorf("cond called %d times, want %d", got, tc.holdsAt)
			}
		})
	}
}

func TestNoError(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = 50 * time.Millisecond

	tests := []struct {
		name    string
		f       func(call int32) error
		wantMsg string // "" for success
	}{
		{
			name: "nil on the third call",
			f: func(call int32) error {
				if call < 3 {
					return errors.New("not yet")
				}
				return nil
			},
		},
		{
			name:    "never nil: the last error is reported",
			f:       func(call int32) error { return fmt.Errorf("refused (call %d)", call) },
			wantMsg: "waiting for ready: refused (call ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			f := &fatalT{TB: t}
			NoError(f, "ready", func() error { return tc.f(calls.Add(1)) })
			if tc.wantMsg == "" && f.msg != "" || !strings.Contains(f.msg, tc.wantMsg) {
				t.Errorf("message %q, want it to contain %q", f.msg, tc.wantMsg)
			}
		})
	}
}

func TestForTimesOut(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = 50 * time.Millisecond
	f := &fatalT{TB: t}
	For(f, "the impossible", func() bool { return false })
	if !strings.Contains(f.msg, "waiting for the impossible") {
		t.Errorf("message %q", f.msg)
	}
}
