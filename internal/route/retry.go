package route

import (
	"fmt"
	"time"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's retry_back_off default base interval; the maximum defaults to ten times the base.
const defaultRetryBase = 25 * time.Millisecond

// RetryPolicy is a compiled retry_policy. It is immutable; the router copies the few fields
// request headers (x-envoy-retry-on, x-envoy-max-retries) may change into its own state.
type RetryPolicy struct {
	On         model.RetryOn
	NumRetries uint32
	// PerTryTimeout and PerTryIdleTimeout bound each attempt (0: none).
	PerTryTimeout     time.Duration
	PerTryIdleTimeout time.Duration
	// BackOffBase and BackOffMax bound the jittered wait before a retry.
	BackOffBase, BackOffMax time.Duration
	// PreviousHosts makes retries avoid hosts already tried.
	PreviousHosts bool
	// HostSelectionMaxAttempts is how many picks a retry may take to find a host the
	// predicate accepts.
	HostSelectionMaxAttempts uint32

	statusCodes []uint32
	headers     []headerMatcher
}

// compileRetryPolicy compiles p; nil stays nil.
func compileRetryPolicy(p *model.RetryPolicy) (*RetryPolicy, error) {
	if p == nil {
		return nil, nil
	}
	r := &RetryPolicy{
		On: p.RetryOn, NumRetries: p.NumRetries,
		PerTryTimeout: p.PerTryTimeout, PerTryIdleTimeout: p.PerTryIdleTimeout,
		BackOffBase: p.BackOffBase, BackOffMax: p.BackOffMax,
		PreviousHosts: p.PreviousHosts, HostSelectionMaxAttempts: max(p.HostSelectionMaxAttempts, 1),
		statusCodes: append([]uint32(nil), p.RetriableStatusCodes...),
	}
	if r.BackOffBase <= 0 {
		r.BackOffBase = defaultRetryBase
	}
	if r.BackOffMax <= 0 {
		r.BackOffMax = 10 * r.BackOffBase
	}
	if r.BackOffMax < r.BackOffBase {
		return nil, fmt.Errorf("retry_policy.retry_back_off: max_interval %v is below base_interval %v", r.BackOffMax, r.BackOffBase)
	}
	for i := range p.RetriableHeaders {
		m, err := compileHeaderMatcher(&p.RetriableHeaders[i])
		if err != nil {
			return nil, fmt.Errorf("retry_policy.retriable_headers[%d]: %w", i, err)
		}
		r.headers = append(r.headers, m)
	}
	return r, nil
}

// RetriableResponse reports whether a response with this status and headers may be retried
// under the conditions on (the policy's, possibly replaced by x-envoy-retry-on).
func (r *RetryPolicy) RetriableResponse(on model.RetryOn, status int, h *header.Map) bool {
	switch {
	case on&model.Retry5xx != 0 && status >= 500 && status <= 599:
		return true
	case on&model.RetryGatewayError != 0 && (status == 502 || status == 503 || status == 504):
		return true
	case on&model.RetryRetriable4xx != 0 && status == 409:
		return true
	}
	if on&model.RetryRetriableStatusCodes != 0 {
		for _, c := range r.statusCodes {
			if int(c) == status {
				return true
			}
		}
	}
	if on&model.RetryRetriableHeaders != 0 {
		for i := range r.headers {
			if r.headers[i].matches(h) {
				return true
			}
		}
	}
	return false
}

// ParseRetryOn reads a comma-separated retry_on value (the x-envoy-retry-on header),
// ignoring unknown tokens as Envoy does. It does not allocate.
func ParseRetryOn(v string) model.RetryOn {
	var on model.RetryOn
	for v != "" {
		tok := v
		for i := 0; i < len(v); i++ {
			if v[i] == ',' {
				tok, v = v[:i], v[i+1:]
				goto parsed
			}
		}
		v = ""
	parsed:
		tok = trimSpace(tok)
		for bit, name := range model.RetryOnNames {
			if tok == name {
				on |= 1 << bit
			}
		}
	}
	return on
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
