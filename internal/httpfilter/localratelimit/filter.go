package localratelimit

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// The x-ratelimit headers of draft-polli-ratelimit-headers-03.
const (
	headerLimit     = "x-ratelimit-limit"
	headerRemaining = "x-ratelimit-remaining"
	headerReset     = "x-ratelimit-reset"
)

// filter is one stream's view: the rules in force (the route's or the chain's), the chain's
// stats, and what the x-ratelimit headers will say. Filters are pooled so a request
// allocates nothing.
type filter struct {
	httpfilter.PassThrough
	r     *rules
	stats *lrStats
	// checked is set when the request was checked and x-ratelimit headers are due.
	checked          bool
	refused          bool // this filter sent the local reply
	limit, remaining uint32
	reset            uint64
}

var filters = sync.Pool{New: func() any { return new(filter) }}

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases {
	return httpfilter.PhaseRequestHeaders | httpfilter.PhaseResponseHeaders | httpfilter.PhaseStreamDone
}

// NewFilter implements httpfilter.Config. A route's LocalRateLimit replaces the chain's
// rules whole, as in Envoy.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	f := filters.Get().(*filter)
	f.r, f.stats = c.r, c.stats
	if o, ok := perRoute.(*Config); ok {
		f.r = o.r
	}
	if f.stats == nil {
		f.stats = unscoped
	}
	return f
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	r := f.r
	if !sampled(r.enabled) {
		return httpfilter.Continue
	}
	f.stats.enabled.Inc()
	if f.allow(s, h) {
		f.stats.ok.Inc()
		return httpfilter.Continue
	}
	f.stats.rateLimited.Inc()
	if !sampled(r.enforced) {
		for _, op := range r.reqAddNotEnforced {
			op.apply(h)
		}
		return httpfilter.Continue
	}
	f.stats.enforced.Inc()
	f.refused = true
	s.SendLocalReply(r.status, "local_rate_limited", httpfilter.FlagRateLimited, "local_rate_limited")
	return httpfilter.Stop
}

// allow takes a token from every bucket the request falls in: each matched descriptor's,
// then the default one (unless a descriptor matched and always_consume_default_token_bucket
// is false). It notes the most restrictive bucket for the x-ratelimit headers.
func (f *filter) allow(s *httpfilter.Stream, h *header.Map) bool {
	r := f.r
	t := now()
	f.checked = false
	matched := false
	var buf [256]byte
	var ends [maxEntries]int
	for i := range r.limits {
		rl := &r.limits[i]
		if len(rl.cands) == 0 {
			continue
		}
		key, ok := describe(rl, s, h, buf[:0], &ends)
		if !ok {
			continue
		}
		d := match(rl, key, &ends)
		if d == nil {
			continue
		}
		matched = true
		b := d.b
		if d.dynamic {
			b = d.dyn.get(key, &d.sp, t)
		}
		if !f.take(b, &d.sp, t) {
			return false
		}
	}
	if r.def == nil || (matched && !r.alwaysDefault) {
		return true
	}
	b := r.defBucket
	if r.perConn != nil {
		key := s.Downstream.DirectRemoteAddr.AppendTo(buf[:0])
		key = append(key, '|')
		key = s.Downstream.LocalAddr.AppendTo(key)
		b = r.perConn.get(key, r.def, t)
	}
	return f.take(b, r.def, t)
}

// take takes a token from b and remembers the lowest remaining share for the headers.
func (f *filter) take(b *bucket, sp *spec, t time.Duration) bool {
	ok, left := b.take(sp, t)
	if f.r.xHeaders && (!f.checked || uint64(left)*uint64(f.limit) < uint64(f.remaining)*uint64(sp.max)) {
		f.checked, f.limit, f.remaining, f.reset = true, sp.max, left, sp.reset(t)
	}
	return ok
}

// describe appends the values of rl's descriptor entries to key, entry i ending at ends[i].
// It reports false when an action has no value (a missing header), which skips rl, as in
// Envoy.
func describe(rl *rateLimit, s *httpfilter.Stream, h *header.Map, key []byte, ends *[maxEntries]int) ([]byte, bool) {
	for i := range rl.actions {
		a := &rl.actions[i]
		switch a.kind {
		case actRemoteAddress:
			addr := s.Downstream.RemoteAddr.Addr()
			if !addr.IsValid() {
				return key, false
			}
			key = addr.Unmap().AppendTo(key)
		case actGenericKey:
			key = append(key, a.value...)
		case actRequestHeader:
			v, ok := h.Get(a.header)
			if !ok {
				return key, false
			}
			key = append(key, v...)
		}
		ends[i] = len(key)
	}
	return key, true
}

// match returns the first candidate descriptor whose fixed values equal the request's.
func match(rl *rateLimit, key []byte, ends *[maxEntries]int) *descriptor {
	for _, d := range rl.cands {
		ok, start := true, 0
		for j, v := range d.values {
			if v != "" && v != string(key[start:ends[j]]) {
				ok = false
				break
			}
			start = ends[j]
		}
		if ok {
			return d
		}
	}
	return nil
}

// OnResponseHeaders implements httpfilter.ResponseHeadersFilter: refusals get
// response_headers_to_add; checked requests the x-ratelimit headers.
func (f *filter) OnResponseHeaders(_ *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	if f.refused {
		for _, op := range f.r.respAdd {
			op.apply(h)
		}
	}
	if f.checked {
		h.Set(headerLimit, strconv.FormatUint(uint64(f.limit), 10))
		h.Set(headerRemaining, strconv.FormatUint(uint64(f.remaining), 10))
		h.Set(headerReset, strconv.FormatUint(f.reset, 10))
	}
	return httpfilter.Continue
}

// OnStreamDone implements httpfilter.StreamDoneFilter: the filter goes back to the pool.
func (f *filter) OnStreamDone(*httpfilter.Stream) {
	*f = filter{}
	filters.Put(f)
}

func sampled(p percent) bool {
	if p.num == 0 {
		return false
	}
	if p.num >= p.den {
		return true
	}
	return rand.Uint32N(p.den) < p.num
}

var _ httpfilter.Filter = (*filter)(nil)
