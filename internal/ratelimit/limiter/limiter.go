// Package limiter counts hits in time windows: the contract a counter store implements
// (Backend), the two algorithms (a fixed window, and a sliding window approximated from two fixed
// ones), and Memory, the in-process store for a single replica and the reference the Redis
// store is tested against.
//
// A Backend does not know about domains or descriptors: it gets a base key per hit, appends the
// window, and reports the count before and after the hit. Whether that is over the limit is the
// caller's decision (After > Limit), so both stores and both algorithms answer in the same terms.
package limiter

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Algorithm is how hits are counted.
type Algorithm uint8

const (
	// Fixed counts hits per calendar-aligned window (a minute limit resets at :00), and counts
	// every hit, allowed or not, as envoyproxy/ratelimit does: a client that keeps sending while
	// over the limit stays over until the window ends.
	Fixed Algorithm = iota
	// Sliding estimates the hits of the last window length from the current fixed window and
	// the previous one, weighted by how much of the previous one still overlaps:
	// previous×(1−elapsed/window) + current. It smooths the burst a fixed window allows at each
	// boundary. Only allowed hits are counted, so a client over the limit gets back under it as
	// the window slides.
	Sliding
)

// ParseAlgorithm reads "fixed" or "sliding".
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "fixed", "":
		return Fixed, nil
	case "sliding":
		return Sliding, nil
	}
	return 0, fmt.Errorf("algorithm %q: want fixed or sliding", s)
}

func (a Algorithm) String() string {
	if a == Sliding {
		return "sliding"
	}
	return "fixed"
}

// Hit is one descriptor's share of a request.
type Hit struct {
	// Key identifies the counter, without the window: the Backend appends the window's start.
	Key string
	// Hits is how much to add (0 only reads).
	Hits uint64
	// Limit is the most the window allows; the sliding algorithm does not count a hit that
	// would go past it.
	Limit uint64
	// Window is the window length, a whole number of seconds.
	Window time.Duration
}

// Count is what a Backend reports for a Hit.
type Count struct {
	// Before is the window's count before the hit, After with it. The hit is over the limit when
	// After > Limit.
	Before, After uint64
}

// Backend counts hits. Do fills out[i] for hits[i] (len(out) == len(hits)) as of now; an error
// means none of the counts is known. Implementations are safe for concurrent use.
type Backend interface {
	Do(ctx context.Context, now time.Time, hits []Hit, out []Count) error
}

// WindowStart is the start, in Unix seconds, of the window of length w that holds now.
func WindowStart(now time.Time, w time.Duration) int64 {
	s := int64(w / time.Second)
	if s <= 0 {
		s = 1
	}
	u := now.Unix()
	return u - u%s
}

// Reset is how long until the window of length w that holds now ends.
func Reset(now time.Time, w time.Duration) time.Duration {
	end := time.Unix(WindowStart(now, w), 0).Add(w)
	return end.Sub(now)
}

// AppendWindowKey appends key and the window's start in Unix seconds. Keys end with a separator
// ("domain_key_value_"), so this is envoyproxy/ratelimit's layout and with the same key prefix
// both services share counters.
func AppendWindowKey(dst []byte, key string, start int64) []byte {
	dst = append(dst, key...)
	return strconv.AppendInt(dst, start, 10)
}

// SlidingEstimate is the sliding algorithm's count: the previous window weighted by the part of
// it the sliding window still covers, plus the current one, in whole milliseconds as the Redis
// script computes it, so that both stores agree to the hit.
func SlidingEstimate(prev, cur uint64, now time.Time, w time.Duration) uint64 {
	wms := uint64(w / time.Millisecond)
	elapsed := uint64(now.UnixMilli()) % wms
	return prev*(wms-elapsed)/wms + cur
}
