package kubernetes

import (
	"testing"
	"time"
)

// TestDebouncer checks the delays chosen: short after a quiet period, the debounce within a
// burst, and never past the burst's bound.
func TestDebouncer(t *testing.T) {
	const deb = 50 * time.Millisecond
	d := newDebouncer(deb)
	defer d.timer.Stop()
	t0 := time.Unix(1000, 0)
	d.fired(t0) // the first translation

	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	steps := []struct {
		at   int // ms after t0
		want time.Duration
	}{
		{10, deb},                    // right after a translation: a burst
		{30, deb},                    // quiet for less than a debounce: wait again
		{990, 20 * time.Millisecond}, // bounded by 20 debounces from the burst's first event (10 ms)
	}
	for _, s := range steps {
		if got := d.event(at(s.at)); got != s.want {
			t.Errorf("event at %d ms: delay %v, want %v", s.at, got, s.want)
		}
	}
	d.fired(at(1000))
	if got := d.event(at(1200)); got != LeadingDelay {
		t.Errorf("event after a quiet period: delay %v, want %v", got, LeadingDelay)
	}
	if got := d.event(at(1202)); got != -1 {
		t.Errorf("event during the leading delay: delay %v, want the timer left as it is", got)
	}
	d.fired(at(1205))
	if got := d.event(at(1220)); got != deb {
		t.Errorf("event right after the leading translation: delay %v, want %v", got, deb)
	}
}
