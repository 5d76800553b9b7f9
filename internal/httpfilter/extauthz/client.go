package extauthz

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nuncio-gw/nuncio/internal/cluster"
	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/upstream"
)

// maxAnswerBody bounds the body of an answer the filter keeps (a denial's page); a longer
// one is an error.
const maxAnswerBody = 1 << 20

// answer is the authorization service's response, copied out of the exchange's buffers.
type answer struct {
	status   int
	headers  []header.Field
	body     []byte
	trailers []header.Field
}

// h1Pool recycles HTTP/1.1 exchanges, which hold nothing once closed.
var h1Pool = sync.Pool{New: func() any { return new(upstream.H1) }}

var errNoCluster = errors.New("ext_authz: authorization cluster not found")

// callHTTP asks an HTTP service and reads its decision.
func (c *Config) callHTTP(ctx context.Context, h *header.Map, body []byte, partial bool) (*decision, error) {
	a, err := c.exchange(ctx, c.checkRequest(h, body, partial), body, c.timeout)
	if err != nil {
		return nil, err
	}
	return c.httpDecision(a), nil
}

// exchange sends req (and body, nil for none) to the authorization service over the
// configured cluster, the router's way: the cluster's load balancer picks a host and an
// upstream.Exchange on its pool carries the request. It returns when the answer is read,
// timeout passes or ctx (the stream's) is cancelled, whichever comes first.
func (c *Config) exchange(ctx context.Context, req *header.Map, body []byte, timeout time.Duration) (*answer, error) {
	cl := c.ref.Load()
	if cl == nil {
		return nil, fmt.Errorf("%w: %q", errNoCluster, c.clusterName)
	}
	host := cl.Choose(&cluster.LBContext{Rnd: rand.Uint64()})
	if host == nil {
		return nil, fmt.Errorf("ext_authz: no healthy host in cluster %q", c.clusterName)
	}
	host.Begin()
	defer host.End()
	// The deadline bounds the exchange through the connection's deadlines (HTTP/1.1) or the
	// stream's context (HTTP/2); a new connection is bounded by the cluster's connect_timeout.
	// No context of its own: on the hot path that would cost a timer and a cancel context.
	deadline := time.Now().Add(timeout)

	pool := host.Pool
	if c.grpc != nil && pool.Protocol() != upstream.HTTP2 {
		return nil, fmt.Errorf("ext_authz: cluster %q does not speak HTTP/2, which gRPC needs", c.clusterName)
	}
	var x upstream.Exchange
	var h1 *upstream.H1
	if pool.Protocol() == upstream.HTTP1 {
		h1 = h1Pool.Get().(*upstream.H1)
		*h1 = upstream.H1{}
		defer h1Pool.Put(h1)
		x = h1
	} else {
		x = upstream.NewExchange(pool.Protocol())
	}
	x.Prepare(req, body == nil)
	if err := x.Connect(ctx, pool, deadline); err != nil {
		return nil, err
	}
	reusable := false
	// An HTTP/1.1 exchange reads under deadlines only: when the stream goes away, the
	// deadline is moved to now so that the read in progress fails at once.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = x.SetReadDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
		x.Close(reusable)
	}()
	if err := x.WriteRequest(req, body, nil); err != nil {
		return nil, err
	}
	var resp header.Map
	end, err := x.ReadResponse(&resp)
	if err != nil {
		return nil, err
	}
	a := &answer{status: resp.Status, headers: make([]header.Field, 0, resp.Len())}
	for _, f := range resp.Fields() {
		a.headers = append(a.headers, header.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	for !end {
		var chunk []byte
		if chunk, end, err = x.ReadBody(); err != nil {
			return nil, err
		}
		if len(a.body)+len(chunk) > maxAnswerBody {
			return nil, fmt.Errorf("ext_authz: answer body over %d bytes", maxAnswerBody)
		}
		a.body = append(a.body, chunk...)
	}
	var tr header.Map
	x.Trailers(&tr)
	for _, f := range tr.Fields() {
		a.trailers = append(a.trailers, header.Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)})
	}
	reusable = ctx.Err() == nil
	return a, nil
}

// checkRequest builds the request to the authorization service from the client's: its
// method, path_prefix + its path (or path_override), its Host, the allowed headers, headers_to_add and, when
// the body is sent, its length.
func (c *Config) checkRequest(h *header.Map, body []byte, partial bool) *header.Map {
	req := &header.Map{Method: h.Method, Scheme: "http", Authority: h.Authority, Path: h.Path}
	if c.prefix != "" {
		req.Path = c.prefix + h.Path
	}
	if c.override != "" {
		req.Path = c.override
	}
	if req.Authority == "" {
		req.Authority = c.authority
	}
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Path == "" {
		req.Path = "/"
	}
	for _, f := range h.Fields() {
		if !forwardable(f.Name) || f.Name == "host" {
			continue
		}
		if c.allowedHeaders == nil || f.Name == "authorization" || c.allowedHeaders.match(f.Name) {
			req.Add(f.Name, f.Value)
		}
	}
	for _, f := range c.headersToAdd {
		req.Set(f.Name, f.Value)
	}
	if body != nil {
		req.Set("content-length", strconv.Itoa(len(body)))
		req.Set(hdrPartialBody, strconv.FormatBool(partial))
	} else {
		// Envoy's check request has no body, whatever the client's method.
		req.Set("content-length", "0")
	}
	return req
}
