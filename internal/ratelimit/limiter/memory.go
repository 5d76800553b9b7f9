package limiter

import (
	"context"
	"sync"
	"time"
)

// Memory is a Backend in process memory: exact and fast, but each replica counts alone. Counters
// expire with their window; expired ones are swept at most once per sweep interval, on the
// request path, so no goroutine needs stopping.
type Memory struct {
	alg Algorithm

	mu        sync.Mutex
	counters  map[string]*counter
	nextSweep time.Time
	keyBuf    []byte
}

type counter struct {
	n       uint64
	expires time.Time
}

const sweepEvery = 10 * time.Second

// NewMemory returns an empty in-memory store counting with alg.
func NewMemory(alg Algorithm) *Memory {
	return &Memory{alg: alg, counters: map[string]*counter{}}
}

// Do implements Backend.
func (m *Memory) Do(_ context.Context, now time.Time, hits []Hit, out []Count) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.nextSweep) {
		m.sweep(now)
	}
	for i, h := range hits {
		start := WindowStart(now, h.Window)
		if m.alg == Fixed {
			c := m.counter(h.Key, start, time.Unix(start, 0).Add(h.Window))
			out[i] = Count{Before: c.n, After: c.n + h.Hits}
			c.n += h.Hits
			continue
		}
		w := int64(h.Window / time.Second)
		prev := m.peek(h.Key, start-w, now)
		cur := m.counter(h.Key, start, time.Unix(start, 0).Add(2*h.Window))
		est := SlidingEstimate(prev, cur.n, now, h.Window)
		out[i] = Count{Before: est, After: est + h.Hits}
		if est+h.Hits <= h.Limit {
			cur.n += h.Hits
		}
	}
	return nil
}

// counter finds or makes the counter of key's window; the map index with string(bytes) does not
// allocate, only a new counter does.
func (m *Memory) counter(key string, start int64, expires time.Time) *counter {
	m.keyBuf = AppendWindowKey(m.keyBuf[:0], key, start)
	c := m.counters[string(m.keyBuf)]
	if c == nil {
		c = &counter{expires: expires}
		m.counters[string(m.keyBuf)] = c
	}
	return c
}

func (m *Memory) peek(key string, start int64, now time.Time) uint64 {
	m.keyBuf = AppendWindowKey(m.keyBuf[:0], key, start)
	if c := m.counters[string(m.keyBuf)]; c != nil && now.Before(c.expires) {
		return c.n
	}
	return 0
}

func (m *Memory) sweep(now time.Time) {
	for k, c := range m.counters {
		if !now.Before(c.expires) {
			delete(m.counters, k)
		}
	}
	m.nextSweep = now.Add(sweepEvery)
}

// Len is how many counters are held, for tests of expiry.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.counters)
}

var _ Backend = (*Memory)(nil)
