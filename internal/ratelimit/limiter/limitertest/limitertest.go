// Package limitertest is the behaviour every limiter.Backend must have, as tests that each store
// (in memory, Redis) runs against itself.
package limitertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
)

// NewBackend makes a fresh store counting with alg.
type NewBackend func(t *testing.T, alg limiter.Algorithm) limiter.Backend

// base is a time at the start of an hour, so that the minute windows the tests use begin at
// known offsets. It is near the real time because a shared store expires keys in real time.
func base() time.Time {
	return time.Now().Truncate(time.Hour)
}

func do(t *testing.T, b limiter.Backend, now time.Time, hits ...limiter.Hit) []limiter.Count {
	t.Helper()
	out := make([]limiter.Count, len(hits))
	if err := b.Do(context.Background(), now, hits, out); err != nil {
		t.Fatalf("Do: %v", err)
	}
	return out
}

// Run runs the suite. Keys are made unique per test, so a shared store needs no flushing.
func Run(t *testing.T, newBackend NewBackend) {
	t.Run("fixed", func(t *testing.T) { fixed(t, newBackend(t, limiter.Fixed)) })
	t.Run("sliding", func(t *testing.T) { sliding(t, newBackend(t, limiter.Sliding)) })
	t.Run("concurrent exact", func(t *testing.T) {
		for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
			t.Run(alg.String(), func(t *testing.T) { concurrent(t, newBackend(t, alg)) })
		}
	})
}

func key(t *testing.T, name string) string {
	return fmt.Sprintf("test_%s_%d_%s", t.Name(), time.Now().UnixNano(), name)
}

func fixed(t *testing.T, b limiter.Backend) {
	k, other := key(t, "k"), key(t, "other")
	t0 := base().Add(10 * time.Second)
	steps := []struct {
		name string
		at   time.Duration
		hit  limiter.Hit
		want limiter.Count
	}{
		{name: "first hit", hit: limiter.Hit{Key: k, Hits: 1, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 0, After: 1}},
		{name: "hits_addend", at: time.Second, hit: limiter.Hit{Key: k, Hits: 2, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 1, After: 3}},
		{name: "over the limit", at: 2 * time.Second, hit: limiter.Hit{Key: k, Hits: 1, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 3, After: 4}},
		{name: "over is counted too", at: 3 * time.Second, hit: limiter.Hit{Key: k, Hits: 1, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 4, After: 5}},
		{name: "zero only reads", at: 4 * time.Second, hit: limiter.Hit{Key: k, Hits: 0, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 5, After: 5}},
		{name: "other key apart", at: 5 * time.Second, hit: limiter.Hit{Key: other, Hits: 1, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 0, After: 1}},
		{name: "next window resets", at: 50 * time.Second, hit: limiter.Hit{Key: k, Hits: 1, Limit: 3, Window: time.Minute}, want: limiter.Count{Before: 0, After: 1}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got := do(t, b, t0.Add(s.at), s.hit)[0]
			if got != s.want {
				t.Errorf("count = %+v, want %+v", got, s.want)
			}
		})
	}
	t.Run("several hits in one call", func(t *testing.T) {
		k := key(t, "multi")
		h := limiter.Hit{Key: k, Hits: 1, Limit: 10, Window: time.Minute}
		got := do(t, b, t0, h, h, limiter.Hit{Key: key(t, "second"), Hits: 1, Limit: 10, Window: time.Second})
		want := []limiter.Count{{Before: 0, After: 1}, {Before: 1, After: 2}, {Before: 0, After: 1}}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("count[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

func sliding(t *testing.T, b limiter.Backend) {
	k := key(t, "k")
	t0 := base() // the start of a minute window
	hit := func(n uint64) limiter.Hit { return limiter.Hit{Key: k, Hits: n, Limit: 10, Window: time.Minute} }
	steps := []struct {
		name string
		at   time.Duration
		hit  limiter.Hit
		want limiter.Count
	}{
		{name: "fill the first window", at: 50 * time.Second, hit: hit(10), want: limiter.Count{Before: 0, After: 10}},
		{name: "over in the same window, not counted", at: 55 * time.Second, hit: hit(1), want: limiter.Count{Before: 10, After: 11}},
		// 15s into the next window three quarters of the previous one still count: 7 (7.5 floored).
		{name: "previous window weighs 3/4", at: 75 * time.Second, hit: hit(3), want: limiter.Count{Before: 7, After: 10}},
		{name: "then over", at: 75 * time.Second, hit: hit(1), want: limiter.Count{Before: 10, After: 11}},
		// 45s in: 10×1/4 = 2 from before plus the 3 counted.
		{name: "as the window slides it frees up", at: 105 * time.Second, hit: hit(5), want: limiter.Count{Before: 5, After: 10}},
		{name: "a window later the first is gone", at: 125 * time.Second, hit: hit(0), want: limiter.Count{Before: 8*55/60 + 0, After: 8*55/60 + 0}},
		{name: "two windows later all is gone", at: 185 * time.Second, hit: hit(1), want: limiter.Count{Before: 0, After: 1}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got := do(t, b, t0.Add(s.at), s.hit)[0]
			if got != s.want {
				t.Errorf("count = %+v, want %+v", got, s.want)
			}
		})
	}
}

// concurrent checks that no hit is lost or counted twice when many callers share a counter.
func concurrent(t *testing.T, b limiter.Backend) {
	const workers, each = 8, 50
	k := key(t, "k")
	now := base().Add(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]limiter.Count, 1)
			for i := 0; i < each; i++ {
				h := []limiter.Hit{{Key: k, Hits: 1, Limit: workers * each, Window: time.Hour}}
				if err := b.Do(context.Background(), now, h, out); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := do(t, b, now, limiter.Hit{Key: k, Hits: 0, Limit: 1, Window: time.Hour})[0]
	if got.Before != workers*each {
		t.Errorf("count after %d concurrent hits = %d", workers*each, got.Before)
	}
}
