package wasm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/upstream"
	"github.com/nuncio-gw/nuncio/internal/wasm/abi"
)

// maxCallBody bounds the response body of a plugin's HTTP call that the host keeps.
const maxCallBody = 4 << 20

// clustersKey finds the stream's cluster resolver in the context the host passes to
// HTTPCall: the filter is that context's parent (see filter.Value).
type clustersKey struct{}

// caller sends a plugin's proxy_http_call to a cluster, the router's way: the cluster's load
// balancer picks a host, and an upstream.Exchange on that host's pool carries the request.
// It runs in the stream's goroutine, inside the plugin's callback (the host delivers the
// response before the callback returns), bounded by the call's timeout and the stream.
type caller struct {
	// fallback resolves cluster names for calls made outside a stream (a tick).
	fallback atomic.Pointer[func(string) *cluster.Ref]
}

// HTTPCall implements abi.HTTPCaller.
func (c *caller) HTTPCall(ctx context.Context, req *abi.HTTPCallRequest) (*abi.HTTPCallResponse, error) {
	resolve, _ := ctx.Value(clustersKey{}).(func(string) *cluster.Ref)
	if resolve == nil {
		if f := c.fallback.Load(); f != nil {
			resolve = *f
		}
	}
	if resolve == nil {
		return nil, errors.New("wasm: no cluster manager for http_call")
	}
	ref := resolve(req.Cluster)
	var cl *cluster.Cluster
	if ref != nil {
		cl = ref.Load()
	}
	if cl == nil {
		return nil, fmt.Errorf("wasm: http_call: unknown cluster %q", req.Cluster)
	}
	h, err := callHead(req)
	if err != nil {
		return nil, err
	}
	host := cl.Pick(rand.Uint64())
	if host == nil {
		return nil, fmt.Errorf("wasm: http_call: no healthy host in cluster %q", req.Cluster)
	}
	host.Begin()
	defer host.End()
	pool := host.Pool
	deadline, _ := ctx.Deadline()
	x := upstream.NewExchange(pool.Protocol())
	var trailers *header.Map
	if len(req.Trailers) > 0 {
		trailers = &header.Map{}
		for _, f := range req.Trailers {
			trailers.Add(f.Name, f.Value)
		}
	}
	x.Prepare(h, len(req.Body) == 0 && trailers == nil)
	if err := x.Connect(ctx, pool, deadline); err != nil {
		return nil, err
	}
	reusable := false
	defer func() { x.Close(reusable) }()
	if !deadline.IsZero() {
		_ = x.SetReadDeadline(deadline)
	}
	if err := x.WriteRequest(h, req.Body, trailers); err != nil {
		return nil, err
	}
	var resp header.Map
	end, err := x.ReadResponse(&resp)
	if err != nil {
		return nil, err
	}
	// Header strings and body chunks alias the exchange's buffers: the plugin reads them
	// after the exchange is closed, so they are copied.
	out := &abi.HTTPCallResponse{Headers: make([]header.Field, 0, resp.Len()+1)}
	out.Headers = append(out.Headers, header.Field{Name: ":status", Value: strconv.Itoa(resp.Status)})
	for _, f := range resp.Fields() {
		out.Headers = append(out.Headers, header.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	for !end {
		var chunk []byte
		if chunk, end, err = x.ReadBody(); err != nil {
			return nil, err
		}
		if len(out.Body)+len(chunk) > maxCallBody {
			return nil, fmt.Errorf("wasm: http_call: response body over %d bytes", maxCallBody)
		}
		out.Body = append(out.Body, chunk...)
	}
	var rt header.Map
	x.Trailers(&rt)
	for _, f := range rt.Fields() {
		out.Trailers = append(out.Trailers, header.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	reusable = true
	return out, nil
}

// callHead builds the request head from the call's headers. Envoy requires :method, :path
// and :authority.
func callHead(req *abi.HTTPCallRequest) (*header.Map, error) {
	h := &header.Map{Scheme: "http"}
	for _, f := range req.Headers {
		switch strings.ToLower(f.Name) {
		case ":method":
			h.Method = f.Value
		case ":path":
			h.Path = f.Value
		case ":authority", "host":
			h.Authority = f.Value
		case ":scheme":
			h.Scheme = f.Value
		case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "proxy-connection":
			// Framing is the exchange's; hop-by-hop fields are not forwarded.
		default:
			if strings.HasPrefix(f.Name, ":") {
				continue
			}
			h.Add(strings.ToLower(f.Name), f.Value)
		}
	}
	if h.Method == "" || h.Path == "" || h.Authority == "" {
		return nil, errors.New("wasm: http_call: :method, :path and :authority are required")
	}
	if len(req.Body) > 0 && len(req.Trailers) == 0 {
		h.Set("content-length", strconv.Itoa(len(req.Body)))
	}
	return h, nil
}

var _ abi.HTTPCaller = (*caller)(nil)
