package decode

import (
	"cmp"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's limits and circuit-breaker defaults.
const (
	maxRingSize          = 8 << 20
	maxMaglevTableSize   = 5000011
	defaultCBMaxPending  = 1024
	defaultCBMaxRequests = 1024
	defaultCBMaxRetries  = 3
	defaultBudgetPercent = 20.0
	defaultMinRetryConc  = 3
)

var (
	_ = allow(&clusterv3.Cluster_LeastRequestLbConfig{}, "choice_count", "active_request_bias")
	_ = allow(&corev3.RuntimeDouble{}, "default_value", "runtime_key")
	_ = allow(&clusterv3.Cluster_RingHashLbConfig{}, "minimum_ring_size", "maximum_ring_size", "hash_function")
	_ = allow(&clusterv3.Cluster_MaglevLbConfig{}, "table_size")
	_ = allow(&clusterv3.Cluster_CommonLbConfig{}, "healthy_panic_threshold", "locality_weighted_lb_config")
	_ = allow(&clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{})
	_ = allow(&typev3.Percent{}, "value")
	_ = allow(&endpointv3.ClusterLoadAssignment_Policy{}, "overprovisioning_factor")
	_ = allow(&clusterv3.CircuitBreakers_Thresholds{}, "priority", "max_connections", "max_pending_requests",
		"max_requests", "max_retries", "retry_budget")
	_ = allow(&clusterv3.CircuitBreakers_Thresholds_RetryBudget{}, "budget_percent", "min_retry_concurrency")
)

// The cluster and load-assignment allow lists live in cluster.go and endpoint.go; these
// fields are decoded here, in health.go and in outlier.go. init runs after every file's
// allow lists, whatever the file order.
func init() {
	allowAlso(&clusterv3.Cluster{}, "least_request_lb_config", "ring_hash_lb_config", "maglev_lb_config",
		"common_lb_config", "health_checks", "outlier_detection")
	allowAlso(&endpointv3.ClusterLoadAssignment{}, "policy")
}

// lbConfig decodes lb_policy with its settings, common_lb_config and the load
// assignment's overprovisioning factor.
var lbPolicies = map[clusterv3.Cluster_LbPolicy]model.LBPolicy{
	clusterv3.Cluster_ROUND_ROBIN:   model.LBRoundRobin,
	clusterv3.Cluster_LEAST_REQUEST: model.LBLeastRequest,
	clusterv3.Cluster_RANDOM:        model.LBRandom,
	clusterv3.Cluster_RING_HASH:     model.LBRingHash,
	clusterv3.Cluster_MAGLEV:        model.LBMaglev,
}

func lbConfig(p path, c *clusterv3.Cluster, out *model.Cluster) error {
	// Unset fields stay zero (or nil): the model reads that as Envoy's default.
	lb := &out.LB

	// A config for another policy is an error, as Envoy's validation has it.
	mismatch := func(field string) error {
		return p.field(field).errorf("does not match lb_policy %s", c.GetLbPolicy())
	}
	var err error
	if out.LBPolicy, err = enum(p.field("lb_policy"), c.GetLbPolicy(), lbPolicies); err != nil {
		return err
	}
	if lr := c.GetLeastRequestLbConfig(); lr != nil {
		lp := p.field("least_request_lb_config")
		if out.LBPolicy != model.LBLeastRequest {
			return mismatch("least_request_lb_config")
		}
		if v := lr.GetChoiceCount(); v != nil {
			if v.GetValue() < 2 {
				return lp.field("choice_count").errorf("must be at least 2")
			}
			lb.ChoiceCount = v.GetValue()
		}
		if b := lr.GetActiveRequestBias(); b != nil {
			v := b.GetDefaultValue()
			if v < 0 {
				return lp.field("active_request_bias").field("default_value").errorf("must not be negative")
			}
			lb.ActiveRequestBias = &v
		}
	}
	if rh := c.GetRingHashLbConfig(); rh != nil {
		rp := p.field("ring_hash_lb_config")
		if out.LBPolicy != model.LBRingHash {
			return mismatch("ring_hash_lb_config")
		}
		if rh.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return rp.field("hash_function").errorf("%s not supported (only XX_HASH)", rh.GetHashFunction())
		}
		if v := rh.GetMinimumRingSize(); v != nil {
			if v.GetValue() < 1 || v.GetValue() > maxRingSize {
				return rp.field("minimum_ring_size").errorf("must be between 1 and %d", maxRingSize)
			}
			lb.MinRingSize = v.GetValue()
		}
		if v := rh.GetMaximumRingSize(); v != nil {
			if v.GetValue() < 1 || v.GetValue() > maxRingSize {
				return rp.field("maximum_ring_size").errorf("must be between 1 and %d", maxRingSize)
			}
			lb.MaxRingSize = v.GetValue()
		}
		if lb.MinRingSize > cmp.Or(lb.MaxRingSize, maxRingSize) {
			return rp.field("minimum_ring_size").errorf("%d is above maximum_ring_size %d", lb.MinRingSize, lb.MaxRingSize)
		}
	}
	if mg := c.GetMaglevLbConfig(); mg != nil {
		if out.LBPolicy != model.LBMaglev {
			return mismatch("maglev_lb_config")
		}
		if v := mg.GetTableSize(); v != nil {
			n := v.GetValue()
			if n > maxMaglevTableSize || !isPrime(n) {
				return p.field("maglev_lb_config").field("table_size").errorf("%d must be a prime up to %d", n, maxMaglevTableSize)
			}
			lb.MaglevTableSize = n
		}
	}
	if cl := c.GetCommonLbConfig(); cl != nil {
		cp := p.field("common_lb_config")
		if t := cl.GetHealthyPanicThreshold(); t != nil {
			if t.GetValue() < 0 || t.GetValue() > 100 {
				return cp.field("healthy_panic_threshold").field("value").errorf("must be between 0 and 100")
			}
			v := t.GetValue()
			lb.HealthyPanicThreshold = &v
		}
		lb.LocalityWeighted = cl.GetLocalityWeightedLbConfig() != nil
	}
	if v := c.GetLoadAssignment().GetPolicy().GetOverprovisioningFactor(); v != nil {
		if v.GetValue() == 0 {
			return p.field("load_assignment").field("policy").field("overprovisioning_factor").errorf("must be above 0")
		}
		lb.OverprovisioningFactor = v.GetValue()
	}
	return nil
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// circuitBreakers decodes the thresholds of the DEFAULT and HIGH priorities.
func circuitBreakers(p path, c *clusterv3.Cluster, out *model.Cluster) error {
	ts := c.GetCircuitBreakers().GetThresholds()
	if len(ts) == 0 {
		return nil
	}
	cb := &model.CircuitBreakers{}
	seen := map[corev3.RoutingPriority]bool{}
	for _, t := range []*model.Thresholds{&cb.Default, &cb.High} {
		*t = model.Thresholds{MaxPendingRequests: defaultCBMaxPending, MaxRequests: defaultCBMaxRequests, MaxRetries: defaultCBMaxRetries}
	}
	for i, t := range ts {
		tp := p.field("circuit_breakers").field("thresholds").index(i)
		var th *model.Thresholds
		switch t.GetPriority() {
		case corev3.RoutingPriority_DEFAULT:
			th = &cb.Default
		case corev3.RoutingPriority_HIGH:
			th = &cb.High
		default:
			return tp.field("priority").errorf("%s not supported", t.GetPriority())
		}
		if seen[t.GetPriority()] {
			return tp.field("priority").errorf("duplicate %s thresholds", t.GetPriority())
		}
		seen[t.GetPriority()] = true
		if v := t.GetMaxConnections(); v != nil {
			if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
				// One pool per host serves both priorities, so only one connection budget exists.
				return tp.field("max_connections").errorf("only the DEFAULT priority's is supported (connections are pooled across priorities)")
			}
			if v.GetValue() == 0 {
				// The model reads 0 as "Envoy's default", so a literal 0 cannot be expressed.
				return tp.field("max_connections").errorf("must be at least 1")
			}
			out.MaxConnections = v.GetValue()
		}
		if v := t.GetMaxPendingRequests(); v != nil {
			th.MaxPendingRequests = v.GetValue()
		}
		if v := t.GetMaxRequests(); v != nil {
			th.MaxRequests = v.GetValue()
		}
		if v := t.GetMaxRetries(); v != nil {
			th.MaxRetries = v.GetValue()
		}
		if rb := t.GetRetryBudget(); rb != nil {
			bp := tp.field("retry_budget")
			b := &model.RetryBudget{BudgetPercent: defaultBudgetPercent, MinRetryConcurrency: defaultMinRetryConc}
			if v := rb.GetBudgetPercent(); v != nil {
				if v.GetValue() < 0 || v.GetValue() > 100 {
					return bp.field("budget_percent").field("value").errorf("must be between 0 and 100")
				}
				b.BudgetPercent = v.GetValue()
			}
			if v := rb.GetMinRetryConcurrency(); v != nil {
				b.MinRetryConcurrency = v.GetValue()
			}
			th.RetryBudget = b
		}
	}
	out.CircuitBreakers = cb
	return nil
}
