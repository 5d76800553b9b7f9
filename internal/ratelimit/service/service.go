// Package service answers Envoy's rate limit protocol (envoy.service.ratelimit.v3.RateLimitService)
// from a config.Config and a limiter.Backend, with envoyproxy/ratelimit's semantics: each
// descriptor of a request is matched to at most one limit and counted on its own; the request is
// OVER_LIMIT when any descriptor is (shadow_mode ones excepted); replaces drops the limits it
// names; unlimited descriptors are never counted.
package service

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/config"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
)

// Response header names added when Options.ResponseHeaders is set (draft RFC's X-RateLimit-*).
const (
	HeaderLimit     = "x-ratelimit-limit"
	HeaderRemaining = "x-ratelimit-remaining"
	HeaderReset     = "x-ratelimit-reset"
)

// Options configure a Service.
type Options struct {
	Backend limiter.Backend
	// ResponseHeaders adds x-ratelimit-limit, -remaining and -reset (seconds) to every response
	// with a limit, for the descriptor closest to its limit.
	ResponseHeaders bool
	// NearLimitRatio is the share of a limit past which hits count as near_limit (default 0.8).
	NearLimitRatio float64
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Service implements rlsv3.RateLimitServiceServer.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer

	cfg     atomic.Pointer[config.Config]
	backend limiter.Backend
	stats   Stats
	headers bool
	near    float64
	now     func() time.Time
	log     *slog.Logger
	// lastErrLog throttles the log of backend errors to one a second: when Redis is down every
	// request fails the same way.
	lastErrLog atomic.Int64
}

// New makes a Service with no configuration: it answers UNAVAILABLE until SetConfig.
func New(o Options) *Service {
	s := &Service{backend: o.Backend, headers: o.ResponseHeaders, near: o.NearLimitRatio, now: o.Now, log: o.Logger}
	if s.near <= 0 || s.near > 1 {
		s.near = 0.8
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// SetConfig swaps in c for the requests that start after it.
func (s *Service) SetConfig(c *config.Config) { s.cfg.Store(c) }

// Config is the configuration in use, nil before the first SetConfig.
func (s *Service) Config() *config.Config { return s.cfg.Load() }

// Stats are the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// ShouldRateLimit implements rlsv3.RateLimitServiceServer. A request it cannot judge (bad
// request, no configuration, the counter store failing) gets a gRPC error rather than an
// answer, so that the caller's failure mode decides.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	if req.GetDomain() == "" {
		return nil, status.Error(codes.InvalidArgument, "ratelimit: domain must not be empty")
	}
	if len(req.GetDescriptors()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "ratelimit: descriptors must not be empty")
	}
	cfg := s.cfg.Load()
	if cfg == nil {
		return nil, status.Error(codes.Unavailable, "ratelimit: no configuration loaded")
	}
	now := s.now()
	limits := s.limits(cfg, req)

	hits := make([]limiter.Hit, 0, len(limits))
	for i, l := range limits {
		if l == nil || l.Unlimited {
			continue
		}
		hits = append(hits, limiter.Hit{
			Key:    counterKey(req.Domain, req.Descriptors[i].Entries),
			Hits:   hitsAddend(req, i),
			Limit:  uint64(l.RequestsPerUnit),
			Window: l.Window(),
		})
	}
	counts := make([]limiter.Count, len(hits))
	if err := s.backend.Do(ctx, now, hits, counts); err != nil {
		s.stats.BackendError.Add(1)
		if last := s.lastErrLog.Load(); now.UnixNano()-last > int64(time.Second) && s.lastErrLog.CompareAndSwap(last, now.UnixNano()) {
			s.log.Warn("ratelimit: counter store failed", "error", err)
		}
		if ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.Unavailable, "ratelimit: counter store: "+err.Error())
	}

	resp := &rlsv3.RateLimitResponse{
		OverallCode: rlsv3.RateLimitResponse_OK,
		Statuses:    make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(limits)),
	}
	closest := -1 // the descriptor with the least remaining, for the headers
	h := 0
	for i, l := range limits {
		switch {
		case l == nil:
			resp.Statuses[i] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
			continue
		case l.Unlimited:
			ks := s.stats.Key(config.StatKey(req.Domain, l, req.Descriptors[i].Entries))
			n := hitsAddend(req, i)
			ks.TotalHits.Add(n)
			ks.WithinLimit.Add(n)
			resp.Statuses[i] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK, LimitRemaining: math.MaxUint32}
			continue
		}
		c, hit := counts[h], hits[h]
		h++
		over := s.account(s.stats.Key(config.StatKey(req.Domain, l, req.Descriptors[i].Entries)), l, hit.Hits, c)
		st := &rlsv3.RateLimitResponse_DescriptorStatus{
			Code:               rlsv3.RateLimitResponse_OK,
			CurrentLimit:       l.Proto,
			DurationUntilReset: durationpb.New(limiter.Reset(now, l.Window())),
		}
		if c.After <= hit.Limit {
			st.LimitRemaining = uint32(hit.Limit - c.After)
		}
		if over && !l.ShadowMode {
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		}
		resp.Statuses[i] = st
		if closest < 0 || moreUrgent(st, resp.Statuses[closest]) {
			closest = i
		}
	}
	if s.headers && closest >= 0 {
		resp.ResponseHeadersToAdd = headers(resp.Statuses[closest])
	}
	return resp, nil
}

// limits finds each descriptor's limit (nil: none), then drops those another one replaces.
func (s *Service) limits(cfg *config.Config, req *rlsv3.RateLimitRequest) []*config.Limit {
	limits := make([]*config.Limit, len(req.Descriptors))
	var replaced []string
	for i, d := range req.Descriptors {
		if o := d.GetLimit(); o != nil {
			if limits[i] = overrideLimit(req.Domain, d.Entries, o); limits[i] != nil {
				continue
			}
		}
		limits[i] = cfg.Lookup(req.Domain, d.Entries)
		if limits[i] != nil {
			replaced = append(replaced, limits[i].Replaces...)
		}
	}
	for _, name := range replaced {
		for i, l := range limits {
			if l != nil && l.Name == name {
				limits[i] = nil
			}
		}
	}
	return limits
}

// overrideLimit is a limit the request itself carries (from route metadata in Envoy), which
// takes the place of the configured one, never in shadow mode. One with a unit of no known
// length is ignored (nil).
func overrideLimit(domain string, entries []*rlcommonv3.RateLimitDescriptor_Entry, o *rlcommonv3.RateLimitDescriptor_RateLimitOverride) *config.Limit {
	u := rlsv3.RateLimitResponse_RateLimit_Unit(o.GetUnit())
	if config.UnitWindow(u) == 0 {
		return nil
	}
	return &config.Limit{
		FullKey:         config.DescriptorKey(domain, entries),
		Unit:            u,
		RequestsPerUnit: o.GetRequestsPerUnit(),
		Proto:           &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: o.GetRequestsPerUnit(), Unit: u},
	}
}

// hitsAddend is descriptor i's hits: its own hits_addend when set (0 included: only check),
// else the request's, at least 1.
func hitsAddend(req *rlsv3.RateLimitRequest, i int) uint64 {
	if h := req.Descriptors[i].GetHitsAddend(); h != nil {
		return h.GetValue()
	}
	return max(1, uint64(req.GetHitsAddend()))
}

// counterKey is envoyproxy/ratelimit's counter key without the window:
// domain_key1_value1_key2_value2_.
func counterKey(domain string, entries []*rlcommonv3.RateLimitDescriptor_Entry) string {
	n := len(domain) + 1
	for _, e := range entries {
		n += len(e.Key) + len(e.Value) + 2
	}
	b := make([]byte, 0, n)
	b = append(b, domain...)
	b = append(b, '_')
	for _, e := range entries {
		b = append(b, e.Key...)
		b = append(b, '_')
		b = append(b, e.Value...)
		b = append(b, '_')
	}
	return string(b)
}

// account updates a rule's stats for one hit and reports whether it is over the limit. As in
// envoyproxy/ratelimit, the hits of a request that crosses a threshold are split: those below
// it count as within or near, those past it as near or over.
func (s *Service) account(ks *KeyStats, l *config.Limit, hits uint64, c limiter.Count) bool {
	limit := uint64(l.RequestsPerUnit)
	near := uint64(math.Floor(float64(limit) * s.near))
	ks.TotalHits.Add(hits)
	if c.After > limit {
		pastLimit := hits
		if c.Before < limit {
			pastLimit = c.After - limit
			ks.NearLimit.Add(limit - max(near, c.Before))
		}
		ks.OverLimit.Add(pastLimit)
		if l.ShadowMode {
			ks.ShadowMode.Add(pastLimit)
		}
		return true
	}
	ks.WithinLimit.Add(hits)
	if c.After > near {
		ks.NearLimit.Add(c.After - max(near, c.Before))
	}
	return false
}

// moreUrgent orders statuses for the headers: over the limit first, then the least remaining.
func moreUrgent(a, b *rlsv3.RateLimitResponse_DescriptorStatus) bool {
	if b.CurrentLimit == nil {
		return true
	}
	if (a.Code == rlsv3.RateLimitResponse_OVER_LIMIT) != (b.Code == rlsv3.RateLimitResponse_OVER_LIMIT) {
		return a.Code == rlsv3.RateLimitResponse_OVER_LIMIT
	}
	return a.LimitRemaining < b.LimitRemaining
}

func headers(st *rlsv3.RateLimitResponse_DescriptorStatus) []*corev3.HeaderValue {
	reset := st.DurationUntilReset.AsDuration()
	secs := int64((reset + time.Second - 1) / time.Second) // a partial second rounds up
	return []*corev3.HeaderValue{
		{Key: HeaderLimit, Value: strconv.FormatUint(uint64(st.CurrentLimit.RequestsPerUnit), 10)},
		{Key: HeaderRemaining, Value: strconv.FormatUint(uint64(st.LimitRemaining), 10)},
		{Key: HeaderReset, Value: strconv.FormatInt(secs, 10)},
	}
}

var _ rlsv3.RateLimitServiceServer = (*Service)(nil)
