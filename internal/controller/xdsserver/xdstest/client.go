// Package xdstest is a minimal ADS client for tests and benchmarks of the controller: it
// subscribes to every listener, route configuration, cluster and endpoint assignment (wildcard)
// over the state-of-the-world or the delta protocol, ACKs every response, and lets a caller wait
// until what it holds satisfies a condition. It speaks the protocol plainly, as a data plane
// would, so that what it measures is the server's side.
package xdstest

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Types are the resource types a Client subscribes to, in the order Envoy asks for them.
var Types = []string{
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.ListenerType,
	resourcev3.RouteType,
}

// Response records one response a client received.
type Response struct {
	TypeURL string
	At      time.Time
	// Names of the resources the response carried, and for delta, the names it removed.
	Names, Removed []string
	Bytes          int
}

// Client is one ADS stream.
type Client struct {
	Node  string
	Delta bool

	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	resources map[string]map[string]*anypb.Any // type URL → name → resource
	versions  map[string]string                // type URL → version_info (SotW)
	log       []Response
	changed   chan struct{} // closed and replaced on every response
	err       error
}

// Dial opens an ADS stream to addr as node and subscribes to Types.
func Dial(ctx context.Context, addr, node string, delta bool) (*Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Route configurations of a large config exceed gRPC's 4 MiB default.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		Node: node, Delta: delta, conn: conn, cancel: cancel, done: make(chan struct{}),
		resources: map[string]map[string]*anypb.Any{},
		versions:  map[string]string{},
		changed:   make(chan struct{}),
	}
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	n := &corev3.Node{Id: node, Cluster: "xdstest"}
	if delta {
		err = subscribe(sctx, ads.DeltaAggregatedResources, c.runDelta, func(t string) *discoveryv3.DeltaDiscoveryRequest {
			return &discoveryv3.DeltaDiscoveryRequest{Node: n, TypeUrl: t}
		})
	} else {
		err = subscribe(sctx, ads.StreamAggregatedResources, c.runSotW, func(t string) *discoveryv3.DiscoveryRequest {
			return &discoveryv3.DiscoveryRequest{Node: n, TypeUrl: t}
		})
	}
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	return c, nil
}

// subscribe opens a stream (SotW or delta), asks it for every one of Types and hands it to
// run in a goroutine.
func subscribe[Req any, St interface{ Send(Req) error }](
	ctx context.Context, open func(context.Context, ...grpc.CallOption) (St, error),
	run func(St), request func(typeURL string) Req,
) error {
	st, err := open(ctx)
	if err != nil {
		return err
	}
	for _, t := range Types {
		if err := st.Send(request(t)); err != nil {
			return err
		}
	}
	go run(st)
	return nil
}

func (c *Client) runSotW(st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) {
	defer close(c.done)
	for {
		resp, err := st.Recv()
		if err != nil {
			c.fail(err)
			return
		}
		at := time.Now()
		set := make(map[string]*anypb.Any, len(resp.GetResources()))
		r := Response{TypeURL: resp.GetTypeUrl(), At: at, Bytes: proto.Size(resp)}
		for _, a := range resp.GetResources() {
			name, err := resourceName(a)
			if err != nil {
				c.fail(err)
				return
			}
			set[name] = a
			r.Names = append(r.Names, name)
		}
		c.mu.Lock()
		c.resources[resp.GetTypeUrl()] = set
		c.versions[resp.GetTypeUrl()] = resp.GetVersionInfo()
		c.record(r)
		c.mu.Unlock()
		err = st.Send(&discoveryv3.DiscoveryRequest{
			TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce(),
		})
		if err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Client) runDelta(st discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) {
	defer close(c.done)
	for {
		resp, err := st.Recv()
		if err != nil {
			c.fail(err)
			return
		}
		r := Response{TypeURL: resp.GetTypeUrl(), At: time.Now(), Bytes: proto.Size(resp), Removed: resp.GetRemovedResources()}
		c.mu.Lock()
		set := c.resources[resp.GetTypeUrl()]
		if set == nil {
			set = map[string]*anypb.Any{}
			c.resources[resp.GetTypeUrl()] = set
		}
		for _, res := range resp.GetResources() {
			set[res.GetName()] = res.GetResource()
			r.Names = append(r.Names, res.GetName())
		}
		for _, name := range resp.GetRemovedResources() {
			delete(set, name)
		}
		c.record(r)
		c.mu.Unlock()
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			c.fail(err)
			return
		}
	}
}

// record appends r and wakes waiters; c.mu is held.
func (c *Client) record(r Response) {
	c.log = append(c.log, r)
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// State is what a client holds, as seen by a Wait condition. It must not be kept or modified.
type State struct {
	Resources map[string]map[string]*anypb.Any
	Versions  map[string]string
	Responses []Response
}

// Wait returns once cond holds for the client's state, or with an error when ctx ends or the
// stream fails first. cond runs with the client's lock held: it must be quick.
func (c *Client) Wait(ctx context.Context, cond func(State) bool) error {
	for {
		c.mu.Lock()
		ok := cond(State{Resources: c.resources, Versions: c.versions, Responses: c.log})
		ch, err := c.changed, c.err
		c.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("xdstest: %s: stream: %w", c.Node, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("xdstest: %s: %w", c.Node, ctx.Err())
		}
	}
}

// Responses returns a copy of the responses received so far.
func (c *Client) Responses() []Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Response(nil), c.log...)
}

// Close ends the stream.
func (c *Client) Close() {
	c.cancel()
	c.conn.Close()
	<-c.done
}

// resourceName reads field 1, the name of every type in Types (cluster_name for endpoints),
// without decoding the whole resource: a benchmark client must not spend its time decoding the
// 1,000 clusters of a response it only needs to index.
func resourceName(a *anypb.Any) (string, error) {
	b := a.GetValue()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", fmt.Errorf("xdstest: %s: %w", a.GetTypeUrl(), protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", fmt.Errorf("xdstest: %s: %w", a.GetTypeUrl(), protowire.ParseError(n))
			}
			return string(v), nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", fmt.Errorf("xdstest: %s: %w", a.GetTypeUrl(), protowire.ParseError(n))
		}
		b = b[n:]
	}
	return "", fmt.Errorf("xdstest: %s has no name", a.GetTypeUrl())
}
