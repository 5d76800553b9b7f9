package localratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBucketRefill(t *testing.T) {
	sp := &spec{max: 3, perFill: 2, interval: time.Second}
	b := newBucket(sp, 0)
	for _, tc := range []struct {
		name     string
		at       time.Duration
		wantOK   bool
		wantLeft uint32
	}{
		{name: "full", at: 0, wantOK: true, wantLeft: 2},
		{name: "second", at: 100 * time.Millisecond, wantOK: true, wantLeft: 1},
		{name: "third", at: 200 * time.Millisecond, wantOK: true, wantLeft: 0},
		{name: "empty", at: 999 * time.Millisecond, wantOK: false, wantLeft: 0},
		{name: "one fill adds two", at: time.Second, wantOK: true, wantLeft: 1},
		{name: "many fills cap at max", at: 10 * time.Second, wantOK: true, wantLeft: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, left := b.take(sp, tc.at)
			if ok != tc.wantOK || left != tc.wantLeft {
				t.Errorf("take at %v = %v, %d; want %v, %d", tc.at, ok, left, tc.wantOK, tc.wantLeft)
			}
		})
	}
}

// TestBucketConcurrent takes from one bucket in many goroutines: exactly max tokens are
// granted within one interval.
func TestBucketConcurrent(t *testing.T) {
	sp := &spec{max: 1000, perFill: 1, interval: time.Hour}
	b := newBucket(sp, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 500 {
				if ok, _ := b.take(sp, time.Minute); ok {
					n++
				}
			}
			mu.Lock()
			granted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if granted != 1000 {
		t.Errorf("granted %d tokens, want 1000", granted)
	}
}

func TestTableBounded(t *testing.T) {
	sp := &spec{max: 1, perFill: 1, interval: time.Hour}
	tb := newTable(20)
	for i := range 100 {
		tb.get([]byte(fmt.Sprint("client", i)), sp, time.Duration(i))
	}
	n := 0
	for i := range tb.shards {
		n += len(tb.shards[i].m)
	}
	if n > 20 {
		t.Errorf("table holds %d buckets, want at most 20", n)
	}
	// The most recent client is still there, with its token taken.
	b := tb.get([]byte("client99"), sp, 100)
	if ok, _ := b.take(sp, 100); !ok {
		t.Error("client99's fresh bucket is empty")
	}
}
