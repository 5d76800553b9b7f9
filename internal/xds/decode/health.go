package decode

import (
	"encoding/hex"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/nuncio-gw/nuncio/internal/model"
)

// Envoy's health-check default.
const defaultNoTrafficInterval = 60 * time.Second

var (
	_ = allow(&corev3.HealthCheck{}, "timeout", "interval", "interval_jitter", "interval_jitter_percent",
		"unhealthy_threshold", "healthy_threshold", "reuse_connection", "no_traffic_interval",
		"unhealthy_interval", "unhealthy_edge_interval", "healthy_edge_interval",
		"http_health_check", "tcp_health_check", "grpc_health_check")
	_ = allow(&corev3.HealthCheck_HttpHealthCheck{}, "host", "path", "request_headers_to_add",
		"request_headers_to_remove", "expected_statuses", "codec_client_type")
	_ = allow(&corev3.HealthCheck_TcpHealthCheck{}, "send", "receive")
	_ = allow(&corev3.HealthCheck_Payload{}, "text", "binary")
	_ = allow(&corev3.HealthCheck_GrpcHealthCheck{}, "service_name", "authority")
)

// healthChecks decodes the cluster's active health check (one at most).
func healthChecks(p path, c *clusterv3.Cluster, out *model.Cluster) error {
	hcs := c.GetHealthChecks()
	if len(hcs) == 0 {
		return nil
	}
	if len(hcs) > 1 {
		return p.field("health_checks").index(1).errorf("only one health check per cluster is supported")
	}
	var err error
	out.HealthCheck, err = healthCheck(p.field("health_checks").index(0), hcs[0])
	return err
}

func healthCheck(p path, h *corev3.HealthCheck) (*model.HealthCheck, error) {
	out := &model.HealthCheck{}
	var err error
	if h.GetTimeout() == nil {
		return nil, p.field("timeout").errorf("required")
	}
	if out.Timeout, err = duration(p.field("timeout"), h.GetTimeout(), 0); err != nil {
		return nil, err
	}
	if h.GetInterval() == nil {
		return nil, p.field("interval").errorf("required")
	}
	if out.Interval, err = duration(p.field("interval"), h.GetInterval(), 0); err != nil {
		return nil, err
	}
	if out.Timeout <= 0 || out.Interval <= 0 {
		return nil, p.errorf("timeout and interval must be above 0")
	}
	if out.IntervalJitter, err = duration(p.field("interval_jitter"), h.GetIntervalJitter(), 0); err != nil {
		return nil, err
	}
	out.IntervalJitterPercent = h.GetIntervalJitterPercent()
	if h.GetUnhealthyThreshold() == nil {
		return nil, p.field("unhealthy_threshold").errorf("required")
	}
	if h.GetHealthyThreshold() == nil {
		return nil, p.field("healthy_threshold").errorf("required")
	}
	out.UnhealthyThreshold = max(h.GetUnhealthyThreshold().GetValue(), 1)
	out.HealthyThreshold = max(h.GetHealthyThreshold().GetValue(), 1)
	if v := h.GetReuseConnection(); v != nil && !v.GetValue() {
		return nil, p.field("reuse_connection").errorf("false not supported (checks keep their connection)")
	}
	if out.NoTrafficInterval, err = duration(p.field("no_traffic_interval"), h.GetNoTrafficInterval(), defaultNoTrafficInterval); err != nil {
		return nil, err
	}
	// Envoy's chain of defaults: unhealthy_interval falls back to interval, the unhealthy
	// edge to unhealthy_interval, the healthy edge to interval.
	if out.UnhealthyInterval, err = duration(p.field("unhealthy_interval"), h.GetUnhealthyInterval(), out.Interval); err != nil {
		return nil, err
	}
	if out.UnhealthyEdgeInterval, err = duration(p.field("unhealthy_edge_interval"), h.GetUnhealthyEdgeInterval(), out.UnhealthyInterval); err != nil {
		return nil, err
	}
	if out.HealthyEdgeInterval, err = duration(p.field("healthy_edge_interval"), h.GetHealthyEdgeInterval(), out.Interval); err != nil {
		return nil, err
	}

	switch k := h.GetHealthChecker().(type) {
	case *corev3.HealthCheck_HttpHealthCheck_:
		out.Kind = model.HealthCheckHTTP
		out.HTTP, err = httpHealthCheck(p.field("http_health_check"), k.HttpHealthCheck)
	case *corev3.HealthCheck_TcpHealthCheck_:
		out.Kind = model.HealthCheckTCP
		out.TCP, err = tcpHealthCheck(p.field("tcp_health_check"), k.TcpHealthCheck)
	case *corev3.HealthCheck_GrpcHealthCheck_:
		out.Kind = model.HealthCheckGRPC
		g := k.GrpcHealthCheck
		out.GRPC = &model.GRPCHealthCheck{ServiceName: g.GetServiceName(), Authority: g.GetAuthority()}
	default:
		return nil, p.errorf("one of http_health_check, tcp_health_check, grpc_health_check required")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func httpHealthCheck(p path, h *corev3.HealthCheck_HttpHealthCheck) (*model.HTTPHealthCheck, error) {
	out := &model.HTTPHealthCheck{Host: h.GetHost(), Path: h.GetPath()}
	if out.Path == "" || out.Path[0] != '/' {
		return nil, p.field("path").errorf("required, starting with /")
	}
	if strings.ContainsAny(out.Path, " \r\n") || strings.ContainsAny(out.Host, " \r\n/") {
		return nil, p.errorf("path and host must not contain spaces, line breaks (or, in host, slashes)")
	}
	if h.GetCodecClientType() != typev3.CodecClientType_HTTP1 {
		return nil, p.field("codec_client_type").errorf("%s not supported (only HTTP1)", h.GetCodecClientType())
	}
	for i, r := range h.GetExpectedStatuses() {
		rp := p.field("expected_statuses").index(i)
		if r.GetStart() < 100 || r.GetEnd() > 600 || r.GetStart() >= r.GetEnd() {
			return nil, rp.errorf("[%d, %d) must be a non-empty range within [100, 600)", r.GetStart(), r.GetEnd())
		}
		out.ExpectedStatuses = append(out.ExpectedStatuses, model.StatusRange{Start: int(r.GetStart()), End: int(r.GetEnd())})
	}
	for i, hv := range h.GetRequestHeadersToAdd() {
		hp := p.field("request_headers_to_add").index(i)
		name := strings.ToLower(hv.GetHeader().GetKey())
		if !validHeaderName(name, false) {
			return nil, hp.field("header").field("key").errorf("invalid header name %q", hv.GetHeader().GetKey())
		}
		value := hv.GetHeader().GetValue()
		if len(hv.GetHeader().GetRawValue()) > 0 {
			value = string(hv.GetHeader().GetRawValue())
		}
		if err := headerValue(value); err != nil {
			return nil, hp.field("header").field("value").errorf("%v", err)
		}
		add := model.HeaderValue{Name: name, Value: value, Append: true}
		if a := hv.GetAppend(); a != nil {
			add.Append = a.GetValue()
		}
		switch hv.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			add.Append = false
		default:
			return nil, hp.field("append_action").errorf("%s not supported for health checks", hv.GetAppendAction())
		}
		if hv.GetKeepEmptyValue() {
			return nil, hp.field("keep_empty_value").errorf("not supported for health checks")
		}
		out.RequestHeaders = append(out.RequestHeaders, add)
	}
	for i, n := range h.GetRequestHeadersToRemove() {
		if !validHeaderName(strings.ToLower(n), false) {
			return nil, p.field("request_headers_to_remove").index(i).errorf("invalid header name %q", n)
		}
		out.RemoveHeaders = append(out.RemoveHeaders, strings.ToLower(n))
	}
	return out, nil
}

func tcpHealthCheck(p path, h *corev3.HealthCheck_TcpHealthCheck) (*model.TCPHealthCheck, error) {
	out := &model.TCPHealthCheck{}
	var err error
	if h.GetSend() != nil {
		if out.Send, err = payload(p.field("send"), h.GetSend()); err != nil {
			return nil, err
		}
	}
	for i, r := range h.GetReceive() {
		b, err := payload(p.field("receive").index(i), r)
		if err != nil {
			return nil, err
		}
		out.Receive = append(out.Receive, b)
	}
	return out, nil
}

// payload decodes a health-check payload: hex text, as Envoy, or raw bytes.
func payload(p path, pl *corev3.HealthCheck_Payload) ([]byte, error) {
	switch v := pl.GetPayload().(type) {
	case *corev3.HealthCheck_Payload_Text:
		b, err := hex.DecodeString(v.Text)
		if err != nil || len(b) == 0 {
			return nil, p.field("text").errorf("must be non-empty hex")
		}
		return b, nil
	case *corev3.HealthCheck_Payload_Binary:
		if len(v.Binary) == 0 {
			return nil, p.field("binary").errorf("must not be empty")
		}
		return v.Binary, nil
	}
	return nil, p.errorf("one of text, binary required")
}
