// Package wait polls a condition until it holds, for tests that wait on something running
// in another goroutine or process. The wait is bounded, so a hang fails the test with what
// it was waiting for instead of stalling until go test's timeout; it is a deadline for a
// broken test, never a measurement, and no test should sleep a fixed time instead.
package wait

import (
	"testing"
	"time"
)

// Timeout bounds every wait: far above what any condition takes on a loaded machine.
const Timeout = 20 * time.Second

// timeout is Timeout, shortened by this package's tests.
var timeout = Timeout

// For polls cond until it returns true, failing t (t.Fatalf) after Timeout with
// "timed out waiting for <what>". Call it from the test's goroutine.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(func() bool { return cond() }) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// NoError polls f until it returns nil, failing t after Timeout with f's last error, which
// usually says more than a bare timeout.
func NoError(t testing.TB, what string, f func() error) {
	t.Helper()
	var err error
	if !poll(func() bool { err = f(); return err == nil }) {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

// poll calls cond at growing intervals (1 ms doubling up to 50 ms: prompt for what is
// nearly done, cheap for what takes seconds) until it holds or Timeout passes. It reports
// whether cond held; cond runs once more at the deadline.
func poll(cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}
