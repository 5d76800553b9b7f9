package service

import (
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// KeyStats are one rule's counters, named as envoyproxy/ratelimit names them. Hits are counted
// with their hits_addend, so a request adding 5 adds 5.
type KeyStats struct {
	TotalHits   atomic.Uint64
	OverLimit   atomic.Uint64
	NearLimit   atomic.Uint64
	WithinLimit atomic.Uint64
	// ShadowMode counts hits over a shadow_mode rule's limit that were let through.
	ShadowMode atomic.Uint64
}

// Stats are the service's counters: per rule (by config.Limit.FullKey, or the request's
// descriptor with detailed_metric) and for the service as a whole.
type Stats struct {
	keys sync.Map // string → *KeyStats

	ConfigLoadSuccess atomic.Uint64
	ConfigLoadError   atomic.Uint64
	// BackendError counts requests answered with an error because the counter store failed.
	BackendError atomic.Uint64
}

// Key returns the counters of key, making them on first use. The lookup of an existing key does
// not allocate.
func (s *Stats) Key(key string) *KeyStats {
	if v, ok := s.keys.Load(key); ok {
		return v.(*KeyStats)
	}
	v, _ := s.keys.LoadOrStore(strings.Clone(key), new(KeyStats))
	return v.(*KeyStats)
}

// WritePrometheus writes every counter in the Prometheus text format: the per-rule ones as
// ratelimit_service_rate_limit_<stat>{key="<full key>"}, the service's as
// ratelimit_service_<stat>.
func (s *Stats) WritePrometheus(w io.Writer) error {
	var keys []string
	s.keys.Range(func(k, _ any) bool {
		keys = append(keys, k.(string))
		return true
	})
	sort.Strings(keys)
	var b []byte
	for _, stat := range []struct {
		name string
		get  func(*KeyStats) uint64
	}{
		{"total_hits", func(k *KeyStats) uint64 { return k.TotalHits.Load() }},
		{"over_limit", func(k *KeyStats) uint64 { return k.OverLimit.Load() }},
		{"near_limit", func(k *KeyStats) uint64 { return k.NearLimit.Load() }},
		{"within_limit", func(k *KeyStats) uint64 { return k.WithinLimit.Load() }},
		{"shadow_mode", func(k *KeyStats) uint64 { return k.ShadowMode.Load() }},
	} {
		name := "ratelimit_service_rate_limit_" + stat.name
		b = append(b, "# TYPE "+name+" counter\n"...)
		for _, k := range keys {
			v, _ := s.keys.Load(k)
			b = append(b, name...)
			b = append(b, `{key="`...)
			b = appendLabelValue(b, k)
			b = append(b, `"} `...)
			b = strconv.AppendUint(b, stat.get(v.(*KeyStats)), 10)
			b = append(b, '\n')
		}
	}
	for _, c := range []struct {
		name string
		v    *atomic.Uint64
	}{
		{"ratelimit_service_config_load_success", &s.ConfigLoadSuccess},
		{"ratelimit_service_config_load_error", &s.ConfigLoadError},
		{"ratelimit_service_backend_error", &s.BackendError},
	} {
		b = append(b, "# TYPE "+c.name+" counter\n"+c.name+" "...)
		b = strconv.AppendUint(b, c.v.Load(), 10)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

// appendLabelValue escapes a label value as the text format requires: backslash, quote, newline.
func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
