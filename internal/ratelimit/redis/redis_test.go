package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter/limitertest"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis/redistest"
)

func newBackend(t testing.TB, addr string, alg limiter.Algorithm) *redis.Backend {
	b := redis.New(redis.Options{Addr: addr, Algorithm: alg, Timeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBehaviour(t *testing.T) {
	srv := redistest.Start(t)
	limitertest.Run(t, func(t *testing.T, alg limiter.Algorithm) limiter.Backend { return newBackend(t, srv.Addr(), alg) })
}

// The suite through two clients at once: what one replica counts, the other sees.
func TestSharedAcrossClients(t *testing.T) {
	srv := redistest.Start(t)
	for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
		t.Run(alg.String(), func(t *testing.T) {
			a, b := newBackend(t, srv.Addr(), alg), newBackend(t, srv.Addr(), alg)
			now := time.Now()
			key := "shared_" + alg.String() + "_" + now.Format(time.RFC3339Nano)
			out := make([]limiter.Count, 1)
			for i := 0; i < 10; i++ {
				be := a
				if i%2 == 1 {
					be = b
				}
				if err := be.Do(context.Background(), now, []limiter.Hit{{Key: key, Hits: 1, Limit: 100, Window: time.Hour}}, out); err != nil {
					t.Fatal(err)
				}
				if out[0].After != uint64(i+1) {
					t.Fatalf("hit %d through client %d: count %d", i+1, i%2, out[0].After)
				}
			}
		})
	}
}

// The counter is a plain integer under envoyproxy/ratelimit's key layout.
func TestKeyLayout(t *testing.T) {
	srv := redistest.Start(t)
	b := redis.New(redis.Options{Addr: srv.Addr(), KeyPrefix: "pfx:"})
	defer b.Close()
	now := time.Unix(1_700_000_030, 0)
	out := make([]limiter.Count, 1)
	if err := b.Do(context.Background(), now, []limiter.Hit{{Key: "dom_k_v_", Hits: 7, Limit: 10, Window: time.Minute}}, out); err != nil {
		t.Fatal(err)
	}
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	ctx := context.Background()
	const want = "pfx:dom_k_v_1699999980" // the minute holding 1700000030
	if v, err := raw.Get(ctx, want).Result(); err != nil || v != "7" {
		t.Errorf("GET %s = %q, %v; want 7", want, v, err)
	}
	if ttl, err := raw.TTL(ctx, want).Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("TTL %s = %v, %v; want (0, 1m]", want, ttl, err)
	}
}

// doBounded fails the test when Do does not return within a bound far above the backend's
// timeout: a hang, not a slow answer.
func doBounded(t *testing.T, b limiter.Backend, key string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		out := make([]limiter.Count, 1)
		done <- b.Do(context.Background(), time.Now(), []limiter.Hit{{Key: key, Hits: 1, Limit: 10, Window: time.Minute}}, out)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return within 10s")
		return nil
	}
}

func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	b := newBackend(t, srv.Addr(), limiter.Fixed)
	key := "down_" + time.Now().Format(time.RFC3339Nano)
	if err := doBounded(t, b, key); err != nil {
		t.Fatalf("before: %v", err)
	}
	steps := []struct {
		name    string
		do      func()
		wantErr bool
	}{
		{name: "stalled", do: srv.Pause, wantErr: true},
		{name: "stalled again", do: func() {}, wantErr: true},
		{name: "continued", do: srv.Resume},
		{name: "killed", do: srv.Stop, wantErr: true},
		{name: "still down", do: func() {}, wantErr: true},
		{name: "restarted", do: srv.Restart},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			err := doBounded(t, b, key)
			if s.wantErr && err == nil {
				t.Fatal("no error")
			}
			if !s.wantErr && err != nil {
				t.Fatalf("error: %v", err)
			}
		})
	}
	// The restarted server is empty, and the script is loaded again.
	out := make([]limiter.Count, 1)
	if err := b.Do(context.Background(), time.Now(), []limiter.Hit{{Key: key + "x", Hits: 1, Limit: 10, Window: time.Minute}}, out); err != nil || out[0].After != 1 {
		t.Fatalf("after restart: %+v, %v", out[0], err)
	}
}

func TestCanceledContext(t *testing.T) {
	srv := redistest.Start(t)
	b := newBackend(t, srv.Addr(), limiter.Fixed)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Do(ctx, time.Now(), []limiter.Hit{{Key: "c", Hits: 1, Limit: 1, Window: time.Second}}, make([]limiter.Count, 1))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func BenchmarkRedis(b *testing.B) {
	srv := redistest.Start(b)
	for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
		b.Run(alg.String(), func(b *testing.B) {
			be := newBackend(b, srv.Addr(), alg)
			hits := []limiter.Hit{{Key: "bench_remote_address_10.0.0.1_", Hits: 1, Limit: 1 << 40, Window: time.Hour}}
			out := make([]limiter.Count, 1)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if err := be.Do(context.Background(), now, hits, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A counter that is not a number (another program's key, a corrupted value) is an error for the
// request, not a panic or a guess.
func TestNonIntegerCounter(t *testing.T) {
	srv := redistest.Start(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer raw.Close()
	now := time.Unix(1_700_000_030, 0)
	for _, alg := range []limiter.Algorithm{limiter.Fixed, limiter.Sliding} {
		t.Run(alg.String(), func(t *testing.T) {
			key := "garbage_" + alg.String() + "_"
			if err := raw.Set(context.Background(), key+"1699999980", "not a number", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			b := newBackend(t, srv.Addr(), alg)
			err := doAt(b, now, limiter.Hit{Key: key, Hits: 1, Limit: 10, Window: time.Minute})
			if err == nil {
				t.Fatal("no error for a non-integer counter")
			}
		})
	}
}

func doAt(b limiter.Backend, now time.Time, h limiter.Hit) error {
	return b.Do(context.Background(), now, []limiter.Hit{h}, make([]limiter.Count, 1))
}
