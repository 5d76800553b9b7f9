package extauthz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// checkPath is the gRPC method the filter calls: envoy.service.auth.v3.Authorization/Check.
const checkPath = "/envoy.service.auth.v3.Authorization/Check"

// defaultGRPCTimeout is Envoy's for grpc_service without a timeout.
const defaultGRPCTimeout = 200 * time.Millisecond

// grpcSettings is grpc_service.
type grpcSettings struct {
	authority string
	timeout   time.Duration
	// grpcTimeout is the grpc-timeout header, rendered once.
	grpcTimeout string
}

func (c *Config) compileGRPC(gs *corev3.GrpcService) error {
	eg := gs.GetEnvoyGrpc()
	if eg == nil {
		return fmt.Errorf("ext_authz: grpc_service.envoy_grpc: required (google_grpc is not supported)")
	}
	if c.clusterName = eg.GetClusterName(); c.clusterName == "" {
		return fmt.Errorf("ext_authz: grpc_service.envoy_grpc.cluster_name: required")
	}
	g := &grpcSettings{authority: eg.GetAuthority(), timeout: defaultGRPCTimeout}
	if g.authority == "" {
		g.authority = c.clusterName
	}
	if t := gs.GetTimeout(); t != nil {
		if g.timeout = t.AsDuration(); g.timeout <= 0 {
			return fmt.Errorf("ext_authz: grpc_service.timeout: must be positive")
		}
	}
	g.grpcTimeout = strconv.FormatInt(max(g.timeout.Milliseconds(), 1), 10) + "m"
	c.grpc = g
	c.ref = cluster.NewRef(c.clusterName)
	return nil
}

// callGRPC asks the Authorization service with a CheckRequest describing the stream, and
// reads its CheckResponse into a decision. Any failure of the call itself (transport, a
// grpc-status other than OK, a malformed message) is an error.
func (c *Config) callGRPC(s *httpfilter.Stream, h *header.Map, body []byte, ext map[string]string) (*decision, error) {
	msg, err := proto.Marshal(c.checkRequestGRPC(s, h, body, ext))
	if err != nil {
		return nil, err
	}
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	req := &header.Map{Method: "POST", Scheme: "http", Authority: c.grpc.authority, Path: checkPath}
	req.Add("content-type", "application/grpc")
	req.Add("te", "trailers")
	req.Add("grpc-timeout", c.grpc.grpcTimeout)
	a, err := c.exchange(s.Ctx, req, frame, c.grpc.timeout)
	if err != nil {
		return nil, err
	}
	if a.status != 200 {
		return nil, fmt.Errorf("ext_authz: gRPC answer with HTTP status %d", a.status)
	}
	// A trailers-only answer carries grpc-status in its headers.
	code, ok := fieldValue(a.trailers, "grpc-status")
	if !ok {
		code, ok = fieldValue(a.headers, "grpc-status")
	}
	if !ok {
		return nil, errors.New("ext_authz: gRPC answer without grpc-status")
	}
	if code != "0" {
		m, _ := fieldValue(a.trailers, "grpc-message")
		return nil, fmt.Errorf("ext_authz: gRPC status %s: %s", code, m)
	}
	if len(a.body) < 5 || a.body[0] != 0 || int(binary.BigEndian.Uint32(a.body[1:5])) != len(a.body)-5 {
		return nil, errors.New("ext_authz: gRPC answer is not one uncompressed message")
	}
	resp := &authv3.CheckResponse{}
	if err := proto.Unmarshal(a.body[5:], resp); err != nil {
		return nil, fmt.Errorf("ext_authz: CheckResponse: %v", err)
	}
	return grpcDecision(resp)
}

// grpcDecision reads a CheckResponse: status OK allows with ok_response's header changes;
// any other status denies with denied_response (403 when it says nothing).
func grpcDecision(r *authv3.CheckResponse) (*decision, error) {
	if r.GetErrorResponse() != nil {
		return nil, errors.New("ext_authz: the authorization service reported an error")
	}
	d := &decision{}
	if r.GetStatus().GetCode() == 0 {
		d.allowed = true
		ok := r.GetOkResponse()
		for _, o := range ok.GetHeaders() {
			hf, good := headerOption(o)
			if !good {
				continue
			}
			if o.GetAppend().GetValue() {
				d.add = append(d.add, hf)
			} else {
				d.set = append(d.set, hf)
			}
		}
		for _, n := range ok.GetHeadersToRemove() {
			if n = strings.ToLower(n); forwardable(n) && n != "host" {
				d.remove = append(d.remove, n)
			}
		}
		for _, o := range ok.GetResponseHeadersToAdd() {
			if hf, good := headerOption(o); good {
				d.respHeaders = append(d.respHeaders, hf)
			}
		}
		return d, nil
	}
	den := r.GetDeniedResponse()
	d.status = int(den.GetStatus().GetCode())
	if d.status < 100 || d.status > 599 {
		d.status = 403
	}
	d.body = []byte(den.GetBody())
	for _, o := range den.GetHeaders() {
		if hf, good := headerOption(o); good {
			d.respHeaders = append(d.respHeaders, hf)
		}
	}
	return d, nil
}

// headerOption is a HeaderValueOption as a field, unless it names a header the service may
// not set (framing, pseudo-headers) or is not a valid field.
func headerOption(o *corev3.HeaderValueOption) (header.Field, bool) {
	name := strings.ToLower(o.GetHeader().GetKey())
	value := o.GetHeader().GetValue()
	if len(o.GetHeader().GetRawValue()) > 0 {
		value = string(o.GetHeader().GetRawValue())
	}
	if !validName(name) || !forwardable(name) || strings.ContainsAny(value, "\r\n\x00") {
		return header.Field{}, false
	}
	return header.Field{Name: name, Value: value}, true
}

// checkRequestGRPC fills the attributes Envoy sends: the peers, the request's method, path,
// host, scheme, protocol, headers (pseudo-headers included) and body, and the route's
// context_extensions.
func (c *Config) checkRequestGRPC(s *httpfilter.Stream, h *header.Map, body []byte, ext map[string]string) *authv3.CheckRequest {
	hdrs := make(map[string]string, h.Len()+4)
	add := func(k, v string) {
		if prev, ok := hdrs[k]; ok {
			v = prev + "," + v
		}
		hdrs[k] = v
	}
	add(":method", h.Method)
	add(":path", h.Path)
	add(":authority", h.Authority)
	scheme := h.Scheme
	if scheme == "" {
		scheme = "http"
		if s.Downstream.Secure {
			scheme = "https"
		}
	}
	add(":scheme", scheme)
	for _, f := range h.Fields() {
		add(f.Name, f.Value)
	}
	_, query, _ := strings.Cut(h.Path, "?")
	size := int64(-1)
	if n, ok := header.ParseDecimal(h.Value("content-length")); ok {
		size = n
	}
	hr := &authv3.AttributeContext_HttpRequest{
		Id: h.Value("x-request-id"), Method: h.Method, Headers: hdrs, Path: h.Path, Host: h.Authority,
		Scheme: scheme, Query: query, Size: size, Protocol: s.Downstream.Protocol,
	}
	if body != nil {
		if c.body != nil && c.body.packAsBytes {
			hr.RawBody = append([]byte(nil), body...)
		} else {
			hr.Body = string(body)
		}
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            peer(s.Downstream.RemoteAddr),
		Destination:       peer(s.Downstream.LocalAddr),
		Request:           &authv3.AttributeContext_Request{Http: hr},
		ContextExtensions: ext,
	}}
	if !s.Info.Start.IsZero() {
		req.Attributes.Request.Time = timestamppb.New(s.Info.Start)
	}
	return req
}

func peer(ap netip.AddrPort) *authv3.AttributeContext_Peer {
	if !ap.IsValid() {
		return nil
	}
	return &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
		SocketAddress: &corev3.SocketAddress{Address: ap.Addr().Unmap().String(),
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(ap.Port())}},
	}}}
}

func fieldValue(fs []header.Field, name string) (string, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}
