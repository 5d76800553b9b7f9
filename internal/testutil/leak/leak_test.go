package leak

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recorder stands for a test: it keeps cleanups to run them on demand, and errors.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(f string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(f, args...))
}

func (r *recorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// parkedUntil blocks until release is closed; its name must show in a leak report.
func parkedUntil(release chan struct{}, started chan struct{}) {
	close(started)
	<-release
}

func TestCheck(t *testing.T) {
	defer func(d time.Duration) { timeout = d }(timeout)
	timeout = 200 * time.Millisecond

	tests := []struct {
		name string
		// run starts what the test under check starts; it returns what ends it, called
		// before (early) or after (late) the check's cleanup.
		run       func() (early, late func())
		wantError string // in the report; "" for none
	}{
		{
			name:      "nothing started",
			run:       func() (func(), func()) { return func() {}, func() {} },
			wantError: "",
		},
		{
			name: "goroutine ended by a cleanup",
			run: func() (func(), func()) {
				release, started := make(chan struct{}), make(chan struct{})
				go parkedUntil(release, started)
				<-started
				return func() { close(release) }, func() {}
			},
			wantError: "",
		},
		{
			name: "goroutine that ends a moment after the cleanups",
			run: func() (func(), func()) {
				release, started := make(chan struct{}), make(chan struct{})
				go parkedUntil(release, started)
				<-started
				return func() { time.AfterFunc(time.Millisecond, func() { close(release) }) }, func() {}
			},
			wantError: "",
		},
		{
			name: "goroutine outliving the test",
			run: func() (func(), func()) {
				release, started := make(chan struct{}), make(chan struct{})
				go parkedUntil(release, started)
				<-started
				return func() {}, func() { close(release) }
			},
			wantError: "leak.parkedUntil",
		},
		{
			name: "signal.Notify's process-wide reader",
			run: func() (func(), func()) {
				c := make(chan os.Signal, 1)
				signal.Notify(c, syscall.SIGUSR2)
				return func() { signal.Stop(c) }, func() {}
			},
			wantError: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			Check(r)
			early, late := tc.run()
			r.Cleanup(early)
			r.finish()
			late()
			switch {
			case tc.wantError == "" && len(r.errors) > 0:
				t.Errorf("unexpected report:\n%s", r.errors[0])
			case tc.wantError != "" && len(r.errors) == 0:
				t.Errorf("no report, want one naming %s", tc.wantError)
			case tc.wantError != "" && !strings.Contains(r.errors[0], tc.wantError):
				t.Errorf("report does not name %s:\n%s", tc.wantError, r.errors[0])
			}
		})
	}
}
