package simple

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

// Health-check defaults of the simple config. Envoy has none for these required fields;
// these suit most services.
const (
	defaultHCInterval           = 10 * time.Second
	defaultHCTimeout            = time.Second
	defaultHCHealthyThreshold   = 1
	defaultHCUnhealthyThreshold = 3
)

var protocols = map[string]string{"": ir.ProtocolHTTP1, "http1": ir.ProtocolHTTP1, "http2": ir.ProtocolHTTP2, "auto": ir.ProtocolAuto}

func (t *translator) cluster(b *v1alpha1.Backend) *ir.Cluster {
	c := &ir.Cluster{
		Name:             b.Name,
		Kind:             ir.ClusterStatic,
		Protocol:         protocols[b.Protocol],
		ConnectTimeout:   duration(b.ConnectTimeout),
		HealthCheck:      healthCheck(b.HealthCheck),
		OutlierDetection: outlierDetection(b.OutlierDetection),
		CircuitBreaker:   circuitBreaker(b.CircuitBreaker),
	}
	if lb := b.LoadBalancer; lb != nil {
		c.LB = strings.ToUpper(lb.Policy)
	}
	// Endpoints are grouped by priority, every priority up to the highest having its group.
	for _, e := range b.Endpoints {
		host, port := hostPort(e.Address)
		if !isIP(host) {
			// One name among the endpoints is enough to need DNS; DNS clusters also take IP
			// literals, so the others keep working.
			c.Kind = ir.ClusterDNS
		}
		for uint32(len(c.Localities)) <= e.Priority {
			c.Localities = append(c.Localities, ir.Locality{Priority: uint32(len(c.Localities))})
		}
		l := &c.Localities[e.Priority]
		l.Endpoints = append(l.Endpoints, ir.Endpoint{Address: host, Port: port, Weight: e.Weight})
	}
	if b.TLS != nil {
		c.TLS = t.upstreamTLS(b)
	}
	return c
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

func (t *translator) upstreamTLS(b *v1alpha1.Backend) *ir.UpstreamTLS {
	cfg := b.TLS
	sni := cfg.SNI
	if sni == "" {
		if host, _, _ := net.SplitHostPort(b.Endpoints[0].Address); !isIP(host) {
			sni = host
		}
	}
	// Verification defaults to the system roots and the SNI name, so that "tls: {}" is safe.
	return &ir.UpstreamTLS{
		SNI:        sni,
		Verify:     !cfg.InsecureSkipVerify,
		CAFile:     t.file(cfg.CA),
		VerifyName: sni,
		CertFile:   t.file(cfg.Cert),
		KeyFile:    t.file(cfg.Key),
	}
}

func healthCheck(hc *v1alpha1.HealthCheck) *ir.HealthCheck {
	if hc == nil {
		return nil
	}
	out := &ir.HealthCheck{
		Interval:           ir.Duration{Duration: defaultHCInterval},
		Timeout:            ir.Duration{Duration: defaultHCTimeout},
		HealthyThreshold:   defaultHCHealthyThreshold,
		UnhealthyThreshold: defaultHCUnhealthyThreshold,
	}
	if hc.Interval != nil {
		out.Interval.Duration = hc.Interval.Duration
	}
	if hc.Timeout != nil {
		out.Timeout.Duration = hc.Timeout.Duration
	}
	// Envoy probes a backend that has had no traffic only once a minute; a simple config
	// means its interval.
	out.NoTrafficInterval = ir.NewDuration(out.Interval.Duration)
	if hc.UnhealthyThreshold != nil {
		out.UnhealthyThreshold = *hc.UnhealthyThreshold
	}
	if hc.HealthyThreshold != nil {
		out.HealthyThreshold = *hc.HealthyThreshold
	}
	switch {
	case hc.HTTP != nil:
		h := &ir.HTTPHealthCheck{Path: hc.HTTP.Path}
		if h.Path == "" {
			h.Path = "/"
		}
		for _, s := range hc.HTTP.ExpectedStatuses {
			h.ExpectedStatuses = append(h.ExpectedStatuses, int(s))
		}
		out.HTTP = h
	case hc.TCP != nil:
		out.TCP = true
	case hc.GRPC != nil:
		out.GRPC = &ir.GRPCHealthCheck{Service: hc.GRPC.Service}
	}
	return out
}

func outlierDetection(od *v1alpha1.OutlierDetection) *ir.OutlierDetection {
	if od == nil {
		return nil
	}
	return &ir.OutlierDetection{
		Consecutive5xx:     od.Consecutive5xx,
		Interval:           duration(od.Interval),
		BaseEjectionTime:   duration(od.BaseEjectionTime),
		MaxEjectionPercent: od.MaxEjectionPercent,
	}
}

func circuitBreaker(cb *v1alpha1.CircuitBreaker) *ir.CircuitBreaker {
	if cb == nil {
		return nil
	}
	return &ir.CircuitBreaker{
		MaxConnections:     cb.MaxConnections,
		MaxPendingRequests: cb.MaxPendingRequests,
		MaxRequests:        cb.MaxRequests,
		MaxRetries:         cb.MaxRetries,
	}
}
