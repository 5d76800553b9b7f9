package localratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

// epoch is the origin of every bucket's clock: buckets count whole fill intervals since it.
var epoch = time.Now()

// now is the time since epoch, from the monotonic clock.
func now() time.Duration { return time.Since(epoch) }

// spec is a token bucket's shape: max tokens, refilled by perFill every interval.
type spec struct {
	max, perFill uint32
	interval     time.Duration
}

// reset is how long until the next fill, rounded up to whole seconds (x-ratelimit-reset).
func (sp *spec) reset(t time.Duration) uint64 {
	left := sp.interval - t%sp.interval
	return uint64((left + time.Second - 1) / time.Second)
}

// bucket is a token bucket without a lock. Its state is one word: the tokens left (high 32
// bits) and the fill interval it was last refilled in (low 32 bits), so a take is a load and a
// compare-and-swap, and refills happen lazily, by whole intervals, as Envoy's timer would
// make them. The interval count wraps after 2^32 intervals (6.8 years at Envoy's 50ms
// minimum); a bucket idle that long refills less than it should once.
type bucket struct {
	state atomic.Uint64
	// used is when the bucket was last taken from, for evicting from a dynamic table.
	used atomic.Int64
}

func newBucket(sp *spec, t time.Duration) *bucket {
	b := &bucket{}
	b.state.Store(uint64(sp.max)<<32 | uint64(uint32(t/sp.interval)))
	b.used.Store(int64(t))
	return b
}

// take takes a token if there is one, and reports the tokens left.
func (b *bucket) take(sp *spec, t time.Duration) (ok bool, left uint32) {
	tick := uint32(t / sp.interval)
	for {
		old := b.state.Load()
		tokens, last := uint32(old>>32), uint32(old)
		if n := tick - last; n > 0 && tokens < sp.max {
			tokens = uint32(min(uint64(tokens)+uint64(n)*uint64(sp.perFill), uint64(sp.max)))
		}
		if tokens == 0 {
			return false, 0
		}
		if b.state.CompareAndSwap(old, uint64(tokens-1)<<32|uint64(tick)) {
			return true, tokens - 1
		}
	}
}

// table holds a bucket per distinct descriptor value (Envoy's dynamic descriptors, and a
// bucket per downstream connection), bounded in size. Lookups of a known value take a shard's
// read lock and allocate nothing; a new value allocates its key and bucket once. When a shard
// is full the least recently used of a few sampled entries makes room (Envoy keeps an exact
// LRU list, which would need a write lock on every request).
type table struct {
	shards   []shard
	perShard int
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*bucket
}

// evictSample is how many entries a full shard looks at to pick the one to evict.
const evictSample = 8

func newTable(size int) *table {
	n := 1
	if size >= 256 {
		n = 16
	}
	t := &table{shards: make([]shard, n), perShard: max(1, (size+n-1)/n)}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
	}
	return t
}

// get returns the bucket for key, making it full if it is new.
func (tb *table) get(key []byte, sp *spec, t time.Duration) *bucket {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	sh := &tb.shards[h%uint32(len(tb.shards))]
	sh.mu.RLock()
	b := sh.m[string(key)]
	sh.mu.RUnlock()
	if b != nil {
		b.used.Store(int64(t))
		return b
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if b = sh.m[string(key)]; b != nil {
		return b
	}
	if len(sh.m) >= tb.perShard {
		var oldest string
		oldestUsed, seen := int64(-1), 0
		for k, v := range sh.m {
			if u := v.used.Load(); oldestUsed < 0 || u < oldestUsed {
				oldest, oldestUsed = k, u
			}
			if seen++; seen == evictSample {
				break
			}
		}
		delete(sh.m, oldest)
	}
	b = newBucket(sp, t)
	sh.m[string(key)] = b
	return b
}
