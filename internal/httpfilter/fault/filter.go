package fault

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// Envoy's fault header names.
const (
	headerDelay           = "x-envoy-fault-delay-request"
	headerDelayPercentage = "x-envoy-fault-delay-request-percentage"
	headerAbort           = "x-envoy-fault-abort-request"
	headerAbortGRPC       = "x-envoy-fault-abort-grpc-request"
	headerAbortPercentage = "x-envoy-fault-abort-request-percentage"
)

// The filter keeps no per-stream state beyond the call, so every stream of a config shares
// one value (Config.filter).
type filter struct {
	httpfilter.PassThrough
	cfg *Config
}

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config. A per-route HTTPFault replaces the filter's config
// whole, as in Envoy.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	if o, ok := perRoute.(*Config); ok {
		return o.filter
	}
	return c.filter
}

// OnRequestHeaders implements httpfilter.RequestHeadersFilter: it delays, then aborts, as the
// config and the request's fault headers say.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, end bool) httpfilter.Status {
	c := f.cfg
	d, delayOn := c.delayFor(h)
	status, grpcStatus, isGRPC, abortOn := c.abortFor(h)
	if !delayOn && !abortOn {
		return httpfilter.Continue
	}
	if c.maxActive > 0 && active.Load() >= int64(c.maxActive) {
		statFaultsOverflow.Inc()
		return httpfilter.Continue
	}
	active.Add(1)
	statActiveFaults.Inc()
	defer func() {
		active.Add(-1)
		statActiveFaults.Dec()
	}()
	if delayOn {
		statDelaysInjected.Inc()
		s.Info.ResponseFlags |= httpfilter.FlagDelayInjected
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.Ctx.Done():
			t.Stop()
			return httpfilter.Stop
		}
	}
	if !abortOn {
		return httpfilter.Continue
	}
	statAbortsInjected.Inc()
	body := c.abortBody()
	if isGRPC {
		s.Info.ResponseFlags |= httpfilter.FlagFaultInjected
		s.Info.ResponseDetails = "fault_filter_abort"
		s.Response.Reset()
		s.Response.Status = 200
		s.Response.Set("content-type", "application/grpc")
		s.Response.Set("grpc-status", strconv.Itoa(grpcStatus))
		s.Response.Set("grpc-message", body)
		s.EncodeHeaders(true)
		return httpfilter.Stop
	}
	s.SendLocalReply(status, body, httpfilter.FlagFaultInjected, "fault_filter_abort")
	return httpfilter.Stop
}

func (c *Config) abortBody() string {
	if c.abort != nil && c.abort.body != "" {
		return c.abort.body
	}
	return "fault filter abort"
}

// delayFor decides whether this request is delayed, and by how much.
func (c *Config) delayFor(h *header.Map) (time.Duration, bool) {
	dl := c.delay
	if dl == nil {
		return 0, false
	}
	d := dl.fixed
	pct := dl.pct
	if dl.fromHeader {
		v, ok := h.Get(headerDelay)
		if !ok {
			return 0, false
		}
		ms, err := strconv.ParseUint(v, 10, 32)
		if err != nil || ms == 0 {
			return 0, false
		}
		d = time.Duration(ms) * time.Millisecond
		pct = headerPercent(h, headerDelayPercentage, pct)
	}
	return d, sampled(pct)
}

// abortFor decides whether this request is aborted, and with what.
func (c *Config) abortFor(h *header.Map) (status, grpcStatus int, isGRPC, ok bool) {
	ab := c.abort
	if ab == nil {
		return 0, 0, false, false
	}
	status, grpcStatus, isGRPC = ab.httpStatus, ab.grpcStatus, ab.isGRPC
	pct := ab.pct
	if ab.fromHeader {
		if v, found := h.Get(headerAbort); found {
			n, err := strconv.Atoi(v)
			if err != nil || n < 200 || n > 599 {
				return 0, 0, false, false
			}
			status, isGRPC = n, false
		} else if v, found := h.Get(headerAbortGRPC); found {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, 0, false, false
			}
			grpcStatus, isGRPC = n, true
		} else {
			return 0, 0, false, false
		}
		pct = headerPercent(h, headerAbortPercentage, pct)
	}
	return status, grpcStatus, isGRPC, sampled(pct)
}

// headerPercent applies a percentage header: its value is the numerator, capped by the
// configured one, over the configured denominator (Envoy's HeaderPercentageProvider).
func headerPercent(h *header.Map, name string, cfg percent) percent {
	v, ok := h.Get(name)
	if !ok {
		return cfg
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return cfg
	}
	return percent{min(uint32(n), cfg.num), cfg.den}
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
