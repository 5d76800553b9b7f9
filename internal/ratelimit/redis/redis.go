// Package redis is a limiter.Backend in Redis, so that every replica of the rate limit service
// (and so every gateway replica behind them) counts against the same limits.
//
// Each call is one Lua script over all of a request's hits, which Redis runs atomically: no
// interleaving between replicas can lose a hit or let two of them both take the last one. Keys
// are envoyproxy/ratelimit's (the descriptor's key, '_', the window's start in Unix seconds),
// holding a plain integer count with an expiry, so with the same prefix and the fixed algorithm
// both services share counters.
//
// Every call is bounded by a timeout, without retries: when Redis is down or stalled the call
// fails within the timeout and the caller (the gateway's rate limit filter) applies its failure
// mode; connections are made again as soon as Redis is back.
package redis

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
)

// fixedScript adds ARGV[2i-1] to KEYS[i] and gives it an expiry of ARGV[2i] seconds when it has
// none (a new window), returning each count after the addition.
var fixedScript = goredis.NewScript(`
local out = {}
for i = 1, #KEYS do
  local n = redis.call('INCRBY', KEYS[i], ARGV[2*i-1])
  if redis.call('TTL', KEYS[i]) == -1 then
    redis.call('EXPIRE', KEYS[i], ARGV[2*i])
  end
  out[i] = n
end
return out
`)

// slidingScript: for hit i, KEYS[2i-1] is the current window's counter and KEYS[2i] the previous
// one's; ARGV[1] is now in Unix milliseconds, then per hit ARGV[3i-1] hits, ARGV[3i] limit and
// ARGV[3i+1] the window in milliseconds. It returns the estimate before each hit; the hit is
// counted only when the estimate with it stays within the limit. The arithmetic is
// limiter.SlidingEstimate's.
var slidingScript = goredis.NewScript(`
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local hits = tonumber(ARGV[3*i-1])
  local limit = tonumber(ARGV[3*i])
  local win = tonumber(ARGV[3*i+1])
  local cur = tonumber(redis.call('GET', KEYS[2*i-1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2*i]) or '0')
  local est = math.floor(prev * (win - now % win) / win) + cur
  if hits > 0 and est + hits <= limit then
    redis.call('INCRBY', KEYS[2*i-1], hits)
    if redis.call('PTTL', KEYS[2*i-1]) == -1 then
      redis.call('PEXPIRE', KEYS[2*i-1], 2 * win)
    end
  end
  out[i] = est
end
return out
`)

// Options configure a Backend.
type Options struct {
	// Addr is Redis's host:port.
	Addr     string
	Username string
	Password string
	DB       int
	// Timeout bounds every call, connecting included (default 100ms).
	Timeout time.Duration
	// PoolSize is the most connections kept open (default: go-redis's, 10 per CPU).
	PoolSize  int
	Algorithm limiter.Algorithm
	// KeyPrefix goes before every key.
	KeyPrefix string
}

// Backend counts in Redis.
type Backend struct {
	client  *goredis.Client
	alg     limiter.Algorithm
	timeout time.Duration
	prefix  string
}

// New makes a Backend; it does not connect until the first call, so it can start before Redis.
func New(o Options) *Backend {
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	c := goredis.NewClient(&goredis.Options{
		Addr:     o.Addr,
		Username: o.Username,
		Password: o.Password,
		DB:       o.DB,
		PoolSize: o.PoolSize,
		// One attempt, bounded: a retry would only stretch the caller's wait, and the gateway
		// has its own failure mode for an unanswered call.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	return &Backend{client: c, alg: o.Algorithm, timeout: o.Timeout, prefix: o.KeyPrefix}
}

// Close closes the connections.
func (b *Backend) Close() error { return b.client.Close() }

// Ping checks that Redis answers, within the timeout.
func (b *Backend) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	return b.client.Ping(ctx).Err()
}

// Do implements limiter.Backend.
func (b *Backend) Do(ctx context.Context, now time.Time, hits []limiter.Hit, out []limiter.Count) error {
	if len(hits) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var res []int64
	var err error
	if b.alg == limiter.Sliding {
		res, err = b.sliding(ctx, now, hits)
	} else {
		res, err = b.fixed(ctx, now, hits)
	}
	if err != nil {
		return fmt.Errorf("redis %s: %w", b.client.Options().Addr, err)
	}
	if len(res) != len(hits) {
		return fmt.Errorf("redis %s: script returned %d counts for %d hits", b.client.Options().Addr, len(res), len(hits))
	}
	for i, h := range hits {
		n := uint64(res[i])
		if b.alg == limiter.Sliding {
			out[i] = limiter.Count{Before: n, After: n + h.Hits}
		} else {
			out[i] = limiter.Count{Before: n - h.Hits, After: n}
		}
	}
	return nil
}

func (b *Backend) key(buf []byte, key string, start int64) string {
	buf = append(buf[:0], b.prefix...)
	return string(limiter.AppendWindowKey(buf, key, start))
}

func (b *Backend) fixed(ctx context.Context, now time.Time, hits []limiter.Hit) ([]int64, error) {
	keys := make([]string, len(hits))
	args := make([]any, 0, 2*len(hits))
	var buf [256]byte
	for i, h := range hits {
		keys[i] = b.key(buf[:0], h.Key, limiter.WindowStart(now, h.Window))
		args = append(args, h.Hits, int64(h.Window/time.Second))
	}
	return fixedScript.Run(ctx, b.client, keys, args...).Int64Slice()
}

func (b *Backend) sliding(ctx context.Context, now time.Time, hits []limiter.Hit) ([]int64, error) {
	keys := make([]string, 0, 2*len(hits))
	args := make([]any, 0, 1+3*len(hits))
	args = append(args, now.UnixMilli())
	var buf [256]byte
	for _, h := range hits {
		start := limiter.WindowStart(now, h.Window)
		w := int64(h.Window / time.Second)
		keys = append(keys, b.key(buf[:0], h.Key, start), b.key(buf[:0], h.Key, start-w))
		args = append(args, h.Hits, h.Limit, h.Window.Milliseconds())
	}
	return slidingScript.Run(ctx, b.client, keys, args...).Int64Slice()
}

var _ limiter.Backend = (*Backend)(nil)

// SetLogger sends go-redis's own log lines (one per failed dial while Redis is down) to log at
// debug level instead of the standard logger; the service reports the failures itself, once a
// second. It is process-wide, as go-redis's logger is.
func SetLogger(log *slog.Logger) { goredis.SetLogger(slogAdapter{log}) }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
	}
}
