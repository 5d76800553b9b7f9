package v1alpha1

import (
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

var protocols = []string{"http1", "http2", "auto"}

var lbPolicies = []string{"round_robin", "least_request", "random", "ring_hash", "maglev"}

func (v *validator) backend(p string, b *Backend) {
	v.name(p+".name", b.Name)
	if b.Protocol != "" && !slices.Contains(protocols, b.Protocol) {
		v.fail(p+".protocol", "%q must be one of %s", b.Protocol, strings.Join(protocols, ", "))
	}
	if b.ConnectTimeout != nil && b.ConnectTimeout.Duration <= 0 {
		v.fail(p+".connectTimeout", "must be positive, got %s", b.ConnectTimeout.Duration)
	}
	if len(b.Endpoints) == 0 {
		v.fail(p+".endpoints", "at least one endpoint is required")
	}
	seen := map[string]int{}
	var maxPriority uint32
	priorities := map[uint32]bool{}
	for _, e := range b.Endpoints {
		priorities[e.Priority] = true
		maxPriority = max(maxPriority, e.Priority)
	}
	for pr := range maxPriority {
		if !priorities[pr] {
			v.fail(p+".endpoints", "priorities must run from 0 without gaps; no endpoint has priority %d", pr)
			break
		}
	}
	for i, e := range b.Endpoints {
		ep := idx(p+".endpoints", i)
		if e.Address == "" {
			v.fail(ep, "address is required")
			continue
		}
		host, port, err := net.SplitHostPort(e.Address)
		if err != nil {
			v.fail(ep, "%q must be host:port, e.g. 10.0.0.1:8080 or api.internal:8080", e.Address)
			continue
		}
		if _, err := netip.ParseAddr(host); err != nil && !isDNSName(host) {
			v.fail(ep, "host %q must be an IP address or a DNS name", host)
		}
		v.port(ep, port, e.Address)
		if j, dup := seen[strings.ToLower(e.Address)]; dup {
			v.fail(ep, "%s is already endpoints[%d]", e.Address, j)
		}
		seen[strings.ToLower(e.Address)] = i
	}
	if t := b.TLS; t != nil {
		tp := p + ".tls"
		if t.SNI != "" && !isDNSName(t.SNI) {
			v.fail(tp+".sni", "%q must be a DNS name", t.SNI)
		}
		if t.CA != "" && t.InsecureSkipVerify {
			v.fail(tp+".insecureSkipVerify", "cannot be combined with ca")
		}
		if (t.Cert == "") != (t.Key == "") {
			v.fail(tp, "cert and key must be given together")
		}
	}
	if lb := b.LoadBalancer; lb != nil && lb.Policy != "" && !slices.Contains(lbPolicies, lb.Policy) {
		v.fail(p+".loadBalancer.policy", "%q must be one of %s", lb.Policy, strings.Join(lbPolicies, ", "))
	}
	if hc := b.HealthCheck; hc != nil {
		v.healthCheck(p+".healthCheck", hc)
	}
	if od := b.OutlierDetection; od != nil {
		op := p + ".outlierDetection"
		v.positive(op+".interval", od.Interval)
		v.positive(op+".baseEjectionTime", od.BaseEjectionTime)
		v.atLeastOne(op+".consecutive5xx", od.Consecutive5xx)
		v.percent(op+".maxEjectionPercent", od.MaxEjectionPercent)
	}
	if cb := b.CircuitBreaker; cb != nil && cb.MaxConnections != nil && *cb.MaxConnections == 0 {
		v.fail(p+".circuitBreaker.maxConnections", "must be at least 1")
	}
}

func (v *validator) healthCheck(p string, hc *HealthCheck) {
	n := 0
	for _, set := range []bool{hc.HTTP != nil, hc.TCP != nil, hc.GRPC != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		v.fail(p, "set exactly one of http, tcp, grpc")
	}
	v.positive(p+".interval", hc.Interval)
	v.positive(p+".timeout", hc.Timeout)
	v.atLeastOne(p+".healthyThreshold", hc.HealthyThreshold)
	v.atLeastOne(p+".unhealthyThreshold", hc.UnhealthyThreshold)
	if h := hc.HTTP; h != nil {
		if h.Path != "" && (h.Path[0] != '/' || strings.ContainsAny(h.Path, " \t\r\n")) {
			v.fail(p+".http.path", "%q must start with / and contain no spaces", h.Path)
		}
		for i, s := range h.ExpectedStatuses {
			if s < 100 || s > 599 {
				v.fail(idx(p+".http.expectedStatuses", i), "must be an HTTP status from 100 to 599, got %d", s)
			}
		}
	}
}

func (v *validator) positive(p string, d *Duration) {
	if d != nil && d.Duration <= 0 {
		v.fail(p, "must be positive, got %s", d.Duration)
	}
}

func (v *validator) atLeastOne(p string, n *uint32) {
	if n != nil && *n == 0 {
		v.fail(p, "must be at least 1")
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
