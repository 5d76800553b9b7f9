package decode

import (
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

const previousHostsName = "envoy.retry_host_predicates.previous_hosts"

var (
	_ = allow(&routev3.RetryPolicy{}, "retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout",
		"retry_host_predicate", "host_selection_retry_max_attempts", "retriable_status_codes",
		"retry_back_off", "retriable_headers")
	_ = allow(&routev3.RetryPolicy_RetryBackOff{}, "base_interval", "max_interval")
	_ = allow(&routev3.RetryPolicy_RetryHostPredicate{}, "name", "typed_config")
	_ = allow(&previoushostsv3.PreviousHostsPredicate{})
)

// retryPolicy decodes a route's or virtual host's retry_policy. Envoy's defaults apply: one
// retry, back-off from 25 ms up to ten times the base.
func retryPolicy(p path, r *routev3.RetryPolicy) (*model.RetryPolicy, error) {
	if r == nil {
		return nil, nil
	}
	out := &model.RetryPolicy{NumRetries: 1, HostSelectionMaxAttempts: 1}
	for _, tok := range strings.Split(r.GetRetryOn(), ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		found := false
		for bit, name := range model.RetryOnNames {
			if tok == name {
				out.RetryOn |= 1 << bit
				found = true
			}
		}
		if !found {
			return nil, p.field("retry_on").errorf("%q not supported (supported: %s)", tok, strings.Join(model.RetryOnNames[:], ", "))
		}
	}
	if v := r.GetNumRetries(); v != nil {
		out.NumRetries = v.GetValue()
	}
	var err error
	if out.PerTryTimeout, err = duration(p.field("per_try_timeout"), r.GetPerTryTimeout(), 0); err != nil {
		return nil, err
	}
	if out.PerTryIdleTimeout, err = duration(p.field("per_try_idle_timeout"), r.GetPerTryIdleTimeout(), 0); err != nil {
		return nil, err
	}
	for i, c := range r.GetRetriableStatusCodes() {
		if c < 100 || c > 599 {
			return nil, p.field("retriable_status_codes").index(i).errorf("%d is not an HTTP status", c)
		}
		out.RetriableStatusCodes = append(out.RetriableStatusCodes, c)
	}
	for i, h := range r.GetRetriableHeaders() {
		m, err := headerMatcher(p.field("retriable_headers").index(i), h)
		if err != nil {
			return nil, err
		}
		out.RetriableHeaders = append(out.RetriableHeaders, m)
	}
	if b := r.GetRetryBackOff(); b != nil {
		bp := p.field("retry_back_off")
		if b.GetBaseInterval() == nil {
			return nil, bp.field("base_interval").errorf("required")
		}
		if out.BackOffBase, err = duration(bp.field("base_interval"), b.GetBaseInterval(), 0); err != nil {
			return nil, err
		}
		if out.BackOffBase < time.Millisecond {
			return nil, bp.field("base_interval").errorf("must be at least 1ms")
		}
		if out.BackOffMax, err = duration(bp.field("max_interval"), b.GetMaxInterval(), 10*out.BackOffBase); err != nil {
			return nil, err
		}
		if out.BackOffMax < out.BackOffBase {
			return nil, bp.field("max_interval").errorf("must not be below base_interval")
		}
	}
	for i, hp := range r.GetRetryHostPredicate() {
		pp := p.field("retry_host_predicate").index(i)
		name := hp.GetName()
		if tc := hp.GetTypedConfig(); tc != nil {
			if typeName(tc.GetTypeUrl()) != "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" {
				return nil, pp.field("typed_config").errorf("%s not supported (only %s)", tc.GetTypeUrl(), previousHostsName)
			}
			name = previousHostsName
		}
		if name != previousHostsName {
			return nil, pp.field("name").errorf("%q not supported (only %s)", name, previousHostsName)
		}
		out.PreviousHosts = true
	}
	if n := r.GetHostSelectionRetryMaxAttempts(); n != 0 {
		if n < 1 || n > 100 {
			return nil, p.field("host_selection_retry_max_attempts").errorf("%d out of range [1, 100]", n)
		}
		out.HostSelectionMaxAttempts = uint32(n)
	}
	return out, nil
}
