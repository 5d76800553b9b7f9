package router

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/route"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// failKind is how an upstream attempt ended, as the retry conditions tell them apart.
type failKind uint8

const (
	failNone     failKind = iota
	failConnect           // no connection (refused, unreachable, connect timeout)
	failReset             // the connection broke before a response arrived
	failPerTry            // the attempt's per_try_timeout (or per_try_idle_timeout) fired
	failTimeout           // the route timeout fired: never retried
	failDuration          // the stream's max duration fired: never retried
	failProtocol          // the upstream sent something that is not HTTP
	failOverflow          // a connection limit refused the attempt
)

// bodyPool holds the request body copies kept for retries and mirrors.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// retryHeadersPolicy is the policy a request gets when it asks for retries with
// x-envoy-retry-on on a route that configures none (Envoy honours the header alone).
var retryHeadersPolicy = &route.RetryPolicy{
	NumRetries: 1, BackOffBase: 25 * time.Millisecond, BackOffMax: 250 * time.Millisecond,
	HostSelectionMaxAttempts: 1,
}

// setupRetry reads the route's retry policy and the x-envoy-* request headers that adjust
// it and the timeouts. The headers are honoured as Envoy does by default and removed before
// the request goes upstream, so an upstream that is itself an Envoy does not apply them
// twice.
func (f *filter) setupRetry(s *httpfilter.Stream, h *header.Map) {
	f.rp = f.fw.Retry
	if f.rp != nil {
		f.retryOn = f.rp.On
		f.retriesLeft = f.rp.NumRetries
		f.perTry = f.rp.PerTryTimeout
	}
	f.timeout = f.fw.Timeout
	if v, ok := h.Get("x-envoy-retry-on"); ok {
		if on := route.ParseRetryOn(v); on != 0 {
			if f.rp == nil {
				f.rp = retryHeadersPolicy
				f.retriesLeft = f.rp.NumRetries
			}
			f.retryOn |= on
		}
		h.Del("x-envoy-retry-on")
	}
	if v, ok := h.Get("x-envoy-max-retries"); ok {
		if n, ok := header.ParseDecimal(v); ok && f.rp != nil {
			f.retriesLeft = uint32(min(n, 1<<16))
		}
		h.Del("x-envoy-max-retries")
	}
	if v, ok := h.Get("x-envoy-upstream-rq-timeout-ms"); ok {
		if n, ok := header.ParseDecimal(v); ok {
			f.timeout = time.Duration(n) * time.Millisecond
		}
		h.Del("x-envoy-upstream-rq-timeout-ms")
	}
	if v, ok := h.Get("x-envoy-upstream-rq-per-try-timeout-ms"); ok {
		if n, ok := header.ParseDecimal(v); ok {
			f.perTry = time.Duration(n) * time.Millisecond
		}
		h.Del("x-envoy-upstream-rq-per-try-timeout-ms")
	}
	f.bodyLimit = s.BufferLimit
	if f.fw.BufferLimit > 0 {
		f.bodyLimit = int(f.fw.BufferLimit)
	}
	f.keepBody = f.retriesLeft > 0 || f.mirrorWanted
}

// keep copies a request body chunk for replay, giving up (and disabling retries and body
// mirrors) once the body outgrows the limit.
func (f *filter) keep(chunk []byte) {
	if !f.keepBody || len(chunk) == 0 {
		return
	}
	if f.body == nil {
		f.body = bodyPool.Get().(*[]byte)
	}
	if len(*f.body)+len(chunk) > f.bodyLimit {
		f.dropBody()
		f.bodyTooLarge = true
		return
	}
	*f.body = append(*f.body, chunk...)
}

func (f *filter) dropBody() {
	f.keepBody = false
	if f.body != nil {
		if cap(*f.body) <= 1<<20 {
			*f.body = (*f.body)[:0]
			bodyPool.Put(f.body)
		}
		f.body = nil
	}
}

// bodyBytes is the kept request body.
func (f *filter) bodyBytes() []byte {
	if f.body == nil {
		return nil
	}
	return *f.body
}

// classify maps an attempt's error to its kind, telling the per-try timeout from the route
// timeout and the stream's max duration by which deadline has passed.
func (f *filter) classify(err error) failKind {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		now := time.Now()
		switch {
		case !f.durationDeadline.IsZero() && !now.Before(f.durationDeadline):
			return failDuration
		case !f.deadline.IsZero() && !now.Before(f.deadline):
			return failTimeout
		case !f.tryDeadline.IsZero() || f.rp != nil && f.rp.PerTryIdleTimeout > 0:
			return failPerTry
		}
		return failTimeout
	case upstream.ProtocolError(err):
		return failProtocol
	}
	return failReset
}

// retriable reports whether an attempt that ended as kind (with status and the response
// headers in s.Response when kind is failNone) may go again, taking a retry slot from the
// circuit breaker when it may. A request that would be retried but has no retries left gets
// flag URX, one the circuit breaker refuses flag UO.
func (f *filter) retriable(s *httpfilter.Stream, kind failKind, status int) bool {
	if f.rp == nil || f.bodyTooLarge || s.ResponseStarted() || s.Ctx.Err() != nil {
		return false
	}
	if !f.retryCondition(s, kind, status) {
		return false
	}
	if f.retriesLeft == 0 {
		s.Info.ResponseFlags |= httpfilter.FlagUpstreamRetryLimitExceeded
		return false
	}
	// A retry holds its slot while it is outstanding: the previous retry of this request has
	// ended by now, so its slot goes back first.
	if f.retrySlots > 0 {
		f.breakers().DoneRetry()
		f.retrySlots--
	}
	if !f.breakers().TryRetry() {
		s.Info.ResponseFlags |= httpfilter.FlagUpstreamOverflow
		return false
	}
	f.retrySlots++
	f.retriesLeft--
	f.retried = true
	f.st.RqRetry.Inc()
	return true
}

// retryCondition reports whether the retry policy covers how the attempt ended.
func (f *filter) retryCondition(s *httpfilter.Stream, kind failKind, status int) bool {
	on := f.retryOn
	switch kind {
	case failNone:
		return f.rp.RetriableResponse(on, status, &s.Response)
	case failConnect:
		return on&(model.Retry5xx|model.RetryGatewayError|model.RetryReset|model.RetryConnectFailure) != 0
	case failReset, failPerTry:
		return on&(model.Retry5xx|model.RetryGatewayError|model.RetryReset) != 0
	}
	return false
}

// backOff waits before a retry: Envoy's fully jittered exponential back-off, a random time
// below base×(2ⁿ−1) for the n-th retry, capped at the maximum. It returns false when the
// route timeout or the stream ends first.
func (f *filter) backOff(s *httpfilter.Stream) bool {
	f.backoffN++
	mult := uint64(1)<<min(f.backoffN, 32) - 1
	ceil := time.Duration(mult) * f.rp.BackOffBase
	if ceil <= 0 || ceil > f.rp.BackOffMax {
		ceil = f.rp.BackOffMax
	}
	d := time.Duration(rand.Int64N(int64(ceil)) + 1)
	if !f.deadline.IsZero() && time.Until(f.deadline) < d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.Ctx.Done():
		return false
	}
}

// nextHost picks the host for a retry, avoiding hosts already tried when the policy has the
// previous_hosts predicate. It picks from the cluster in force now, which a configuration
// update may have replaced; f.c, whose circuit breakers hold this request's slots, stays.
func (f *filter) nextHost() *cluster.Host {
	c := f.ref.Load()
	if c == nil {
		c = f.c
	}
	var excl func(*cluster.Host) bool
	tries := 1
	if f.rp != nil && f.rp.PreviousHosts {
		excl = f.excludeFn
		tries = int(f.rp.HostSelectionMaxAttempts)
	}
	return choose(c, f.hash, f.hasHash, rand.Uint64(), excl, tries)
}

// excluded is the previous_hosts predicate.
func (f *filter) excluded(h *cluster.Host) bool {
	for _, t := range f.tried[:f.ntried] {
		if t == h || t.Address == h.Address {
			return true
		}
	}
	return false
}

// useHost makes h the attempt's host.
func (f *filter) useHost(s *httpfilter.Stream, h *cluster.Host) {
	if f.host != nil {
		f.host.End()
	}
	f.host = h
	h.Begin()
	if f.ntried < len(f.tried) {
		f.tried[f.ntried] = h
		f.ntried++
	} else {
		copy(f.tried[:], f.tried[1:])
		f.tried[len(f.tried)-1] = h
	}
	s.Info.UpstreamHost = h.Address
	f.pool = h.PoolFor(s.Downstream.Protocol == "HTTP/2")
	if s.Span != nil { // tracing: a client span per attempt, its context in the request (httpfilter.Span)
		s.Span.UpstreamAttempt(s, &s.Request)
	}
}

// beginAttempt numbers the attempt, counts it and arms its per-try deadline.
func (f *filter) beginAttempt(h *header.Map) {
	f.attempt++
	f.st.RqTotal.Inc()
	f.tryDeadline = time.Time{}
	if f.perTry > 0 {
		f.tryDeadline = time.Now().Add(f.perTry)
	}
	if f.fw.IncludeAttemptCount {
		b := strconv.AppendUint(f.numBuf[:0], uint64(f.attempt), 10)
		h.Set("x-envoy-attempt-count", string(b))
	}
}

// attemptDeadline is the earliest of the route, per-try and stream deadlines.
func (f *filter) attemptDeadline() time.Time {
	d := f.deadline
	for _, x := range [...]time.Time{f.tryDeadline, f.durationDeadline} {
		if !x.IsZero() && (d.IsZero() || x.Before(d)) {
			d = x
		}
	}
	return d
}

// report tells the host's outlier detector how an attempt went.
func (f *filter) report(kind failKind, status int) {
	if f.host == nil {
		return
	}
	switch kind {
	case failNone:
		f.st.Code(status)
		reportResult(f.host, status, false)
	case failConnect, failReset, failPerTry, failTimeout:
		reportResult(f.host, 0, true)
	case failProtocol:
		reportResult(f.host, 502, false)
	}
	if kind == failPerTry {
		f.st.RqPerTryTimeout.Inc()
	}
}

// failLocally answers the stream after a final failed attempt, with Envoy's details and flags.
func (f *filter) failLocally(s *httpfilter.Stream, kind failKind, err error) {
	f.failed = true
	f.releaseConn(false)
	if err != nil && kind != failPerTry && kind != failTimeout {
		s.Info.UpstreamFailure = err.Error()
	}
	switch kind {
	case failOverflow:
		if f.c != nil {
			f.breakers().ConnOverflow()
		}
		s.SendLocalReply(503, bodyOverflow, httpfilter.FlagUpstreamOverflow, "upstream_cx_overflow")
	case failConnect:
		s.SendLocalReply(503, bodyConnectFail, httpfilter.FlagUpstreamConnectFailure, "upstream_reset_before_response_started{connection_failure}")
	case failPerTry:
		s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_per_try_timeout")
	case failTimeout:
		f.st.RqTimeout.Inc()
		s.SendLocalReply(504, bodyTimeout, httpfilter.FlagUpstreamRequestTimeout, "upstream_response_timeout")
	case failDuration:
		f.st.RqMaxDuration.Inc()
		s.SendLocalReply(408, "downstream duration timeout", httpfilter.FlagDurationTimeout, "max_duration_timeout")
	case failProtocol:
		s.SendLocalReply(502, "upstream sent an invalid response", httpfilter.FlagUpstreamProtocolError, "upstream_reset_before_response_started{protocol_error}")
	default:
		s.SendLocalReply(503, bodyConnTerm, httpfilter.FlagUpstreamConnectionTermination, "upstream_reset_before_response_started{connection_termination}")
	}
}

// grpcTimeout parses a grpc-timeout header value ("100m", "5S": at most 8 digits and a unit).
func grpcTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, ok := header.ParseDecimal(v[:len(v)-1])
	if !ok {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}
