package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter/limitertest"
)

func TestMemory(t *testing.T) {
	limitertest.Run(t, func(t *testing.T, alg limiter.Algorithm) limiter.Backend { return limiter.NewMemory(alg) })
}

func TestMemoryExpiry(t *testing.T) {
	m := limiter.NewMemory(limiter.Fixed)
	now := time.Unix(1_000_000_020, 0)
	out := make([]limiter.Count, 1)
	for i := 0; i < 5; i++ {
		h := []limiter.Hit{{Key: "k", Hits: 1, Limit: 1, Window: time.Second}}
		if err := m.Do(context.Background(), now.Add(time.Duration(i)*time.Second), h, out); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Do(context.Background(), now.Add(time.Hour), nil, out[:0]); err != nil {
		t.Fatal(err)
	}
	if n := m.Len(); n != 0 {
		t.Errorf("%d counters left after their windows ended", n)
	}
}

func TestWindow(t *testing.T) {
	now := time.Unix(3600*10+125, 500_000_000)
	tests := []struct {
		name      string
		window    time.Duration
		wantStart int64
		wantReset time.Duration
	}{
		{name: "second", window: time.Second, wantStart: 3600*10 + 125, wantReset: 500 * time.Millisecond},
		{name: "minute", window: time.Minute, wantStart: 3600*10 + 120, wantReset: 54*time.Second + 500*time.Millisecond},
		{name: "hour", window: time.Hour, wantStart: 3600 * 10, wantReset: time.Hour - 125*time.Second - 500*time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := limiter.WindowStart(now, tc.window); got != tc.wantStart {
				t.Errorf("WindowStart = %d, want %d", got, tc.wantStart)
			}
			if got := limiter.Reset(now, tc.window); got != tc.wantReset {
				t.Errorf("Reset = %v, want %v", got, tc.wantReset)
			}
		})
	}
	if got := string(limiter.AppendWindowKey(nil, "d_k_v_", 60)); got != "d_k_v_60" {
		t.Errorf("AppendWindowKey = %q", got)
	}
}

func BenchmarkMemory(b *testing.B) {
	for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
		b.Run(alg.String(), func(b *testing.B) {
			m := limiter.NewMemory(alg)
			now := time.Unix(1_000_000_000, 0)
			hits := []limiter.Hit{{Key: "domain_remote_address_10.0.0.1_", Hits: 1, Limit: 1 << 40, Window: time.Hour}}
			out := make([]limiter.Count, 1)
			b.ReportAllocs()
			for b.Loop() {
				_ = m.Do(context.Background(), now, hits, out)
			}
		})
	}
}
