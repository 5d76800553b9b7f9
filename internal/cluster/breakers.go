package cluster

import (
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Envoy's circuit-breaker defaults.
const (
	defaultMaxPending          = 1024
	defaultMaxRequests         = 1024
	defaultMaxRetries          = 3
	defaultRetryBudgetPercent  = 20.0
	defaultMinRetryConcurrency = 3
)

// Breakers are one routing priority's request-level circuit breakers. The router takes a
// slot before it starts something and gives it back when that ends:
//
//	if !b.TryRequest() { 503 UO }; defer b.DoneRequest()
//
// A refused Try counts the overflow stat. Connection-level limits (max_connections) are
// enforced by the upstream pools. Every method is a few atomic operations.
type Breakers struct {
	maxRequests, maxPending, maxRetries int64
	budget                              bool // retry budget replaces maxRetries
	budgetFraction                      float64
	minRetries                          int64

	rq, pending, retries atomic.Int64

	pendingOverflow *stats.Counter // upstream_rq_pending_overflow: max_pending and max_requests
	retryOverflow   *stats.Counter // upstream_rq_retry_overflow
	cxOverflow      *stats.Counter // upstream_cx_overflow
}

func newBreakers(t *model.Thresholds, sc *stats.Scope) *Breakers {
	b := &Breakers{
		maxRequests:     defaultMaxRequests,
		maxPending:      defaultMaxPending,
		maxRetries:      defaultMaxRetries,
		pendingOverflow: sc.Counter("upstream_rq_pending_overflow"),
		retryOverflow:   sc.Counter("upstream_rq_retry_overflow"),
		cxOverflow:      sc.Counter("upstream_cx_overflow"),
	}
	if t == nil {
		return b
	}
	b.maxRequests, b.maxPending, b.maxRetries = int64(t.MaxRequests), int64(t.MaxPendingRequests), int64(t.MaxRetries)
	if rb := t.RetryBudget; rb != nil {
		b.budget = true
		b.budgetFraction = rb.BudgetPercent / 100
		b.minRetries = int64(rb.MinRetryConcurrency)
	}
	return b
}

func try(n *atomic.Int64, max int64, overflow *stats.Counter) bool {
	if n.Add(1) > max {
		n.Add(-1)
		if overflow != nil {
			overflow.Inc()
		}
		return false
	}
	return true
}

// TryRequest takes a slot under max_requests; false means the breaker is open.
func (b *Breakers) TryRequest() bool { return try(&b.rq, b.maxRequests, b.pendingOverflow) }

// DoneRequest returns a slot taken by TryRequest.
func (b *Breakers) DoneRequest() { b.rq.Add(-1) }

// TryPending takes a slot under max_pending_requests, for a request waiting for a
// connection; false means the breaker is open.
func (b *Breakers) TryPending() bool { return try(&b.pending, b.maxPending, b.pendingOverflow) }

// DonePending returns a slot taken by TryPending.
func (b *Breakers) DonePending() { b.pending.Add(-1) }

// TryRetry takes a slot for one retry under max_retries, or under the retry budget when
// one is configured: budget_percent of the active and pending requests, but never fewer
// than min_retry_concurrency. False means the retry must not happen.
func (b *Breakers) TryRetry() bool {
	limit := b.maxRetries
	if b.budget {
		limit = max(b.minRetries, int64(b.budgetFraction*float64(b.rq.Load()+b.pending.Load())))
	}
	return try(&b.retries, limit, b.retryOverflow)
}

// ConnOverflow counts a request refused because the cluster's max_connections was reached
// (the pool returned upstream.ErrOverflow). The pools enforce that limit; the router reports
// it here so it shows as upstream_cx_overflow.
func (b *Breakers) ConnOverflow() { b.cxOverflow.Inc() }

// DoneRetry returns a slot taken by TryRetry.
func (b *Breakers) DoneRetry() { b.retries.Add(-1) }

// Requests is the number of requests in flight.
func (b *Breakers) Requests() int64 { return b.rq.Load() }

// Pending is the number of requests waiting for a connection.
func (b *Breakers) Pending() int64 { return b.pending.Load() }

// Retries is the number of retries in flight.
func (b *Breakers) Retries() int64 { return b.retries.Load() }
