package client

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/testutil/loopback"
	"github.com/nuncio-gw/nuncio/internal/testutil/wait"
)

// The tests run the client against real gRPC ADS servers on loopback: a scripted one, whose
// responses each test writes and whose requests it reads, for exact protocol checks, and
// go-control-plane's server and snapshot cache as an independent implementation.

// scripted is an ADS server that hands each stream to the test.
type scripted struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	streams chan *stream
	srv     *grpc.Server
	addr    string
}

// stream is one ADS stream as the server sees it: the requests received, in order, and a
// way to send responses and to end it.
type stream struct {
	t     *testing.T
	sotw  discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	delta discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	reqs  chan proto.Message
	end   chan struct{}
	once  sync.Once
	held  []proto.Message // requests read past while looking for another type
}

func startScripted(t *testing.T) *scripted {
	t.Helper()
	ln := loopback.Listen(t)
	s := &scripted{streams: make(chan *stream, 16), srv: grpc.NewServer(), addr: ln.Addr().String()}
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		s.srv.Stop()
		<-done
	})
	return s
}

func (s *scripted) serve(st *stream, recv func() (proto.Message, error)) error {
	go func() {
		for {
			m, err := recv()
			if err != nil {
				st.close()
				return
			}
			select {
			case st.reqs <- m:
			case <-st.end:
				return
			}
		}
	}()
	s.streams <- st
	<-st.end
	return context.Canceled
}

func (s *scripted) StreamAggregatedResources(x discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	st := &stream{sotw: x, reqs: make(chan proto.Message, 64), end: make(chan struct{})}
	return s.serve(st, func() (proto.Message, error) { return x.Recv() })
}

func (s *scripted) DeltaAggregatedResources(x discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	st := &stream{delta: x, reqs: make(chan proto.Message, 64), end: make(chan struct{})}
	return s.serve(st, func() (proto.Message, error) { return x.Recv() })
}

// accept returns the next stream the client opens.
func (s *scripted) accept(t *testing.T) *stream {
	t.Helper()
	select {
	case st := <-s.streams:
		st.t = t
		return st
	case <-time.After(wait.Timeout):
		t.Fatal("no stream opened")
		return nil
	}
}

func (st *stream) close() { st.once.Do(func() { close(st.end) }) }

func typeOf(m proto.Message) string {
	switch r := m.(type) {
	case *discoveryv3.DiscoveryRequest:
		return r.GetTypeUrl()
	case *discoveryv3.DeltaDiscoveryRequest:
		return r.GetTypeUrl()
	}
	return ""
}

// next returns the next request of type typeURL, keeping those of other types for later.
func (st *stream) next(typeURL string) proto.Message {
	st.t.Helper()
	for i, m := range st.held {
		if typeOf(m) == typeURL {
			st.held = slices.Delete(st.held, i, i+1)
			return m
		}
	}
	timeout := time.After(wait.Timeout)
	for {
		select {
		case m := <-st.reqs:
			if typeOf(m) == typeURL {
				return m
			}
			st.held = append(st.held, m)
		case <-timeout:
			st.t.Fatalf("no %s request", typeURL)
			return nil
		}
	}
}

func (st *stream) req(typeURL string) *discoveryv3.DiscoveryRequest {
	st.t.Helper()
	return st.next(typeURL).(*discoveryv3.DiscoveryRequest)
}

func (st *stream) dreq(typeURL string) *discoveryv3.DeltaDiscoveryRequest {
	st.t.Helper()
	return st.next(typeURL).(*discoveryv3.DeltaDiscoveryRequest)
}

// none checks that no request of typeURL comes within a short while.
func (st *stream) none(typeURL string) {
	st.t.Helper()
	for _, m := range st.held {
		if typeOf(m) == typeURL {
			st.t.Fatalf("unexpected %s request: %v", typeURL, m)
		}
	}
	timeout := time.After(200 * time.Millisecond)
	for {
		select {
		case m := <-st.reqs:
			if typeOf(m) == typeURL {
				st.t.Fatalf("unexpected %s request: %v", typeURL, m)
			}
			st.held = append(st.held, m)
		case <-timeout:
			return
		}
	}
}

func (st *stream) send(typeURL, version, nonce string, res ...proto.Message) {
	st.t.Helper()
	resp := &discoveryv3.DiscoveryResponse{TypeUrl: typeURL, VersionInfo: version, Nonce: nonce}
	for _, r := range res {
		resp.Resources = append(resp.Resources, mustAny(st.t, r))
	}
	if err := st.sotw.Send(resp); err != nil {
		st.t.Fatal(err)
	}
}

func (st *stream) sendDelta(typeURL, nonce string, removed []string, res map[string]proto.Message, version string) {
	st.t.Helper()
	resp := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: typeURL, Nonce: nonce, RemovedResources: removed, SystemVersionInfo: version}
	for _, name := range slices.Sorted(maps.Keys(res)) {
		resp.Resources = append(resp.Resources, &discoveryv3.Resource{Name: name, Version: version, Resource: mustAny(st.t, res[name])})
	}
	if err := st.delta.Send(resp); err != nil {
		st.t.Fatal(err)
	}
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// applier records what the client puts in force.
type applier struct {
	mu        sync.Mutex
	cur       *model.Bootstrap
	routes    map[string]*model.RouteConfig
	endpoints map[string][]model.LocalityEndpoints
	applies   int
	// fail refuses a configuration, as the data plane does one that does not build.
	fail func(b *model.Bootstrap) error
}

func (a *applier) Apply(b *model.Bootstrap) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		if err := a.fail(b); err != nil {
			return err
		}
	}
	a.cur, a.applies = b, a.applies+1
	a.routes = map[string]*model.RouteConfig{}
	for _, rc := range b.RouteConfigs {
		a.routes[rc.Name] = rc
	}
	a.endpoints = map[string][]model.LocalityEndpoints{}
	for _, c := range b.Clusters {
		a.endpoints[c.Name] = c.Localities
	}
	return nil
}

func (a *applier) UpdateRoutes(tables map[string]*model.RouteConfig) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for n, rc := range tables {
		a.routes[n] = rc
	}
	return nil
}

func (a *applier) SetEndpoints(cluster string, ls []model.LocalityEndpoints) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.endpoints[cluster] = ls
	return nil
}

// state is a summary of what is in force: listener and cluster names, route table names
// with their virtual hosts' first route prefix, and endpoint counts.
func (a *applier) listeners() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	if a.cur != nil {
		for _, l := range a.cur.Listeners {
			out = append(out, l.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (a *applier) clusters() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	if a.cur != nil {
		for _, c := range a.cur.Clusters {
			out = append(out, c.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (a *applier) route(name string) *model.RouteConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.routes[name]
}

func (a *applier) endpointCount(cluster string) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls, ok := a.endpoints[cluster]
	n := 0
	for _, l := range ls {
		n += len(l.Endpoints)
	}
	return n, ok
}

// run starts a client on addr; it stops at the end of the test.
func run(t *testing.T, addr string, delta bool, a *applier, static *model.Bootstrap) *Client {
	t.Helper()
	if static == nil {
		static = &model.Bootstrap{Dynamic: &model.DynamicResources{LDS: true, CDS: true}}
	}
	c := New(Options{
		Target: addr, Node: &corev3.Node{Id: "dp-1"}, Delta: delta, Static: static, Applier: a,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func adsSource(timeout time.Duration) *corev3.ConfigSource {
	cs := &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
	if timeout >= 0 {
		cs.InitialFetchTimeout = durationpb.New(timeout)
	}
	return cs
}

// listener is an HTTP listener taking its routes from RDS table rds.
func listener(t *testing.T, name string, port uint32, rds string, timeout time.Duration) *listenerv3.Listener {
	t.Helper()
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: "ingress",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: rds, ConfigSource: adsSource(timeout),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)},
		}}}},
	}
}

// badListener fails to decode at a field Nuncio does not support.
func badListener(t *testing.T, name string, port uint32) *listenerv3.Listener {
	l := listener(t, name, port, "r", -1)
	l.TcpFastOpenQueueLength = wrapperspb.UInt32(5)
	return l
}

func routeTable(name, prefix string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{
				ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "backend"},
			}},
		}},
	}}}
}

func firstPrefix(rc *model.RouteConfig) string {
	if rc == nil || len(rc.VirtualHosts) == 0 || len(rc.VirtualHosts[0].Routes) == 0 {
		return ""
	}
	return rc.VirtualHosts[0].Routes[0].Match.Path
}

func edsCluster(name string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(time.Second),
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource(timeout)},
	}
}

func cla(name string, ports ...uint32) *endpointv3.ClusterLoadAssignment {
	var eps []*endpointv3.LbEndpoint
	for _, p := range ports {
		eps = append(eps, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: p},
			}}},
		}}})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}}}
}

// TestSotWProtocol follows one state-of-the-world stream: the first requests, ACKs carrying
// the version and nonce, subscriptions following what listeners and clusters name, removal of
// what a full listener or cluster response leaves out (but not of a route table or endpoints
// left out of theirs), and NACKs naming the resource and the field.
func TestSotWProtocol(t *testing.T) {
	ldsOK, ldsBad, cdsOK := counter("listener_manager.lds.update_success"), counter("listener_manager.lds.update_rejected"), counter("cluster_manager.cds.update_success")
	s := startScripted(t)
	a := &applier{}
	c := run(t, s.addr, false, a, nil)
	st := s.accept(t)

	cds := st.req(ClusterType)
	if cds.GetNode().GetId() != "dp-1" || cds.GetVersionInfo() != "" || cds.GetResponseNonce() != "" || len(cds.GetResourceNames()) != 0 {
		t.Fatalf("first CDS request: %v", cds)
	}
	lds := st.req(ListenerType)
	if lds.GetNode() != nil || lds.GetVersionInfo() != "" || len(lds.GetResourceNames()) != 0 {
		t.Fatalf("first LDS request (node only on the stream's first): %v", lds)
	}
	st.none(RouteType) // nothing names a route table yet

	st.send(ClusterType, "c1", "n1", edsCluster("backend", -1))
	if r := st.req(ClusterType); r.GetVersionInfo() != "c1" || r.GetResponseNonce() != "n1" || r.GetErrorDetail() != nil {
		t.Fatalf("CDS ACK: %v", r)
	}
	if r := st.req(EndpointType); !slices.Equal(r.GetResourceNames(), []string{"backend"}) || r.GetVersionInfo() != "" {
		t.Fatalf("EDS subscription: %v", r)
	}
	st.send(ListenerType, "l1", "n2", listener(t, "web", 10001, "main", -1))
	if r := st.req(ListenerType); r.GetVersionInfo() != "l1" || r.GetResponseNonce() != "n2" {
		t.Fatalf("LDS ACK: %v", r)
	}
	if r := st.req(RouteType); !slices.Equal(r.GetResourceNames(), []string{"main"}) {
		t.Fatalf("RDS subscription: %v", r)
	}
	// Warming: neither the cluster nor the listener is in force before what it names.
	if got := a.listeners(); len(got) != 0 {
		t.Fatalf("listener in force before its route table: %v", got)
	}
	select {
	case <-c.Initialized():
		t.Fatal("initialized while the listener and cluster warm")
	default:
	}
	st.send(EndpointType, "e1", "n3", cla("backend", 9001, 9002))
	if r := st.req(EndpointType); r.GetVersionInfo() != "e1" || r.GetResponseNonce() != "n3" || !slices.Equal(r.GetResourceNames(), []string{"backend"}) {
		t.Fatalf("EDS ACK: %v", r)
	}
	st.send(RouteType, "r1", "n4", routeTable("main", "/a"))
	if r := st.req(RouteType); r.GetVersionInfo() != "r1" || r.GetResponseNonce() != "n4" {
		t.Fatalf("RDS ACK: %v", r)
	}
	wait.For(t, "the listener and cluster are in force", func() bool {
		n, _ := a.endpointCount("backend")
		return slices.Equal(a.listeners(), []string{"web"}) && n == 2 && firstPrefix(a.route("main")) == "/a"
	})
	select {
	case <-c.Initialized():
	case <-time.After(wait.Timeout):
		t.Fatal("not initialized once everything arrived")
	}

	// A listener switching route tables: the old one is unsubscribed, the new one subscribed.
	st.send(ListenerType, "l2", "n5", listener(t, "web", 10001, "other", -1))
	st.req(ListenerType)
	if r := st.req(RouteType); !slices.Equal(r.GetResourceNames(), []string{"main", "other"}) {
		// The running listener keeps "main" until "other" arrives.
		t.Fatalf("RDS subscription while the new listener warms: %v", r.GetResourceNames())
	}
	st.send(RouteType, "r2", "n6", routeTable("other", "/o"))
	if r := st.req(RouteType); r.GetVersionInfo() != "r2" || !slices.Equal(r.GetResourceNames(), []string{"other"}) {
		t.Fatalf("RDS once the new listener runs: %v", r)
	}
	wait.For(t, "the new route table is in force", func() bool { return firstPrefix(a.route("other")) == "/o" })

	// A route table left out of an RDS response is not removed.
	st.send(RouteType, "r3", "n7")
	if r := st.req(RouteType); r.GetVersionInfo() != "r3" {
		t.Fatalf("RDS ACK of an empty response: %v", r)
	}
	if firstPrefix(a.route("other")) != "/o" || len(c.Dump().Routes) != 1 {
		t.Fatalf("a route table left out of an RDS response was removed")
	}

	// One bad listener among good ones: the good ones apply, the bad one is NACKed by name
	// and field, with the previous version_info.
	st.send(ListenerType, "l3", "n8", listener(t, "web", 10001, "other", -1), listener(t, "api", 10002, "other", -1), badListener(t, "bad", 10003))
	r := st.req(ListenerType)
	detail := r.GetErrorDetail().GetMessage()
	if r.GetVersionInfo() != "l2" || r.GetResponseNonce() != "n8" || !strings.Contains(detail, `listener "bad": tcp_fast_open_queue_length`) || strings.Contains(detail, `"api"`) {
		t.Fatalf("NACK: version %q nonce %q detail %q", r.GetVersionInfo(), r.GetResponseNonce(), detail)
	}
	wait.For(t, "the good listeners are in force", func() bool { return slices.Equal(a.listeners(), []string{"api", "web"}) })
	var sawError bool
	for _, l := range c.Dump().Listeners {
		if l.Name == "bad" && l.Error != nil && strings.Contains(l.Error.Details, "tcp_fast_open") && l.Error.Version == "l3" {
			sawError = true
		}
	}
	if !sawError {
		t.Errorf("config dump without the refused listener's error: %+v", c.Dump().Listeners)
	}

	// A full LDS response without a listener removes it; CDS likewise.
	st.send(ListenerType, "l4", "n9", listener(t, "web", 10001, "other", -1))
	if r := st.req(ListenerType); r.GetVersionInfo() != "l4" || r.GetErrorDetail() != nil {
		t.Fatalf("LDS ACK: %v", r)
	}
	wait.For(t, "the listener left out is removed", func() bool { return slices.Equal(a.listeners(), []string{"web"}) })
	st.send(ClusterType, "c2", "n10")
	st.req(ClusterType)
	wait.For(t, "the cluster left out is removed", func() bool { return len(a.clusters()) == 0 })
	if r := st.req(EndpointType); len(r.GetResourceNames()) != 0 {
		t.Fatalf("EDS still subscribed after its cluster went: %v", r)
	}

	// Four LDS responses, one of them refused (in part); two CDS responses.
	tests := []struct {
		name string
		stat string
		from uint64
		want uint64
	}{
		{name: "lds accepted", stat: "listener_manager.lds.update_success", from: ldsOK, want: 3},
		{name: "lds refused", stat: "listener_manager.lds.update_rejected", from: ldsBad, want: 1},
		{name: "cds accepted", stat: "cluster_manager.cds.update_success", from: cdsOK, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := counter(tc.stat) - tc.from; got != tc.want {
				t.Errorf("%s grew by %d, want %d", tc.stat, got, tc.want)
			}
		})
	}
	if v := gauge("control_plane.connected_state"); v != 1 {
		t.Errorf("control_plane.connected_state = %d while the stream is up, want 1", v)
	}
}

// counter reads a counter from the process-wide store (0 when absent).
func counter(name string) uint64 {
	for _, st := range stats.Default.All() {
		if st.Name == name {
			return uint64(st.Value)
		}
	}
	return 0
}

// gauge reads a gauge from the process-wide store.
func gauge(name string) int64 { return int64(counter(name)) }

// TestApplyFailureNamesResource checks that a resource that decodes but that the data plane
// refuses is found among the others, refused by name, and the others applied.
func TestApplyFailureNamesResource(t *testing.T) {
	s := startScripted(t)
	a := &applier{fail: func(b *model.Bootstrap) error {
		for _, l := range b.Listeners {
			if l.Address.Port == 10009 {
				return &bindError{}
			}
		}
		return nil
	}}
	run(t, s.addr, false, a, nil)
	st := s.accept(t)
	st.req(ListenerType)
	var ls []proto.Message
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		port := uint32(10001 + i)
		if name == "c" {
			port = 10009
		}
		ls = append(ls, staticRoutes(t, listener(t, name, port, "r", -1)))
	}
	st.send(ListenerType, "1", "n1", ls...)
	r := st.req(ListenerType)
	if d := r.GetErrorDetail().GetMessage(); !strings.HasPrefix(d, `listener "c": `) || !strings.Contains(d, "address in use") || r.GetVersionInfo() != "" {
		t.Fatalf("NACK %q (version %q)", d, r.GetVersionInfo())
	}
	wait.For(t, "the other listeners apply", func() bool { return slices.Equal(a.listeners(), []string{"a", "b", "d", "e"}) })
}

type bindError struct{}

func (*bindError) Error() string { return "listen tcp 127.0.0.1:10009: bind: address in use" }

// staticRoutes gives l an inline route table, so that it warms for nothing.
func staticRoutes(t *testing.T, l *listenerv3.Listener) *listenerv3.Listener {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix:     "ingress",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: routeTable("inline", "/")},
		HttpFilters:    []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}},
	}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, h)}
	return l
}

// TestDeltaProtocol follows an incremental stream: subscriptions and unsubscriptions,
// removed_resources, per-resource versions, and a NACK that names the resource.
func TestDeltaProtocol(t *testing.T) {
	s := startScripted(t)
	a := &applier{}
	c := run(t, s.addr, true, a, nil)
	st := s.accept(t)
	if r := st.dreq(ClusterType); r.GetNode().GetId() != "dp-1" || len(r.GetResourceNamesSubscribe()) != 0 {
		t.Fatalf("first delta CDS request: %v", r)
	}
	st.dreq(ListenerType)

	st.sendDelta(ClusterType, "n1", nil, map[string]proto.Message{"backend": edsCluster("backend", -1)}, "1")
	if r := st.dreq(ClusterType); r.GetResponseNonce() != "n1" || r.GetErrorDetail() != nil {
		t.Fatalf("delta CDS ACK: %v", r)
	}
	if r := st.dreq(EndpointType); !slices.Equal(r.GetResourceNamesSubscribe(), []string{"backend"}) {
		t.Fatalf("delta EDS subscription: %v", r)
	}
	st.sendDelta(EndpointType, "n2", nil, map[string]proto.Message{"backend": cla("backend", 9001)}, "1")
	st.dreq(EndpointType)
	st.sendDelta(ListenerType, "n3", nil, map[string]proto.Message{
		"web": listener(t, "web", 10001, "main", -1), "api": listener(t, "api", 10002, "main", -1),
	}, "1")
	st.dreq(ListenerType)
	if r := st.dreq(RouteType); !slices.Equal(r.GetResourceNamesSubscribe(), []string{"main"}) {
		t.Fatalf("delta RDS subscription: %v", r)
	}
	st.sendDelta(RouteType, "n4", nil, map[string]proto.Message{"main": routeTable("main", "/")}, "1")
	st.dreq(RouteType)
	wait.For(t, "both listeners are in force", func() bool { return slices.Equal(a.listeners(), []string{"api", "web"}) })

	// removed_resources removes; a changed listener subscribes to its new table and drops
	// the old one once it runs.
	st.sendDelta(ListenerType, "n5", []string{"api"}, map[string]proto.Message{"web": listener(t, "web", 10001, "next", -1)}, "2")
	st.dreq(ListenerType)
	wait.For(t, "the removed listener goes", func() bool { return slices.Equal(a.listeners(), []string{"web"}) })
	if r := st.dreq(RouteType); !slices.Equal(r.GetResourceNamesSubscribe(), []string{"next"}) || len(r.GetResourceNamesUnsubscribe()) != 0 {
		t.Fatalf("delta RDS while the new listener warms: %v", r)
	}
	st.sendDelta(RouteType, "n6", nil, map[string]proto.Message{"next": routeTable("next", "/n")}, "2")
	st.dreq(RouteType) // ACK
	if r := st.dreq(RouteType); !slices.Equal(r.GetResourceNamesUnsubscribe(), []string{"main"}) {
		t.Fatalf("delta RDS once the new listener runs: %v", r)
	}

	// A bad resource is NACKed by name; the good one in the same response applies.
	st.sendDelta(ListenerType, "n7", nil, map[string]proto.Message{
		"bad": badListener(t, "bad", 10003), "new": listener(t, "new", 10004, "next", -1),
	}, "3")
	r := st.dreq(ListenerType)
	if d := r.GetErrorDetail().GetMessage(); r.GetResponseNonce() != "n7" || !strings.Contains(d, `listener "bad": tcp_fast_open_queue_length`) {
		t.Fatalf("delta NACK: %v", r)
	}
	wait.For(t, "the good listener applies", func() bool { return slices.Equal(a.listeners(), []string{"new", "web"}) })
	d := c.Dump()
	versions := map[string]string{}
	for _, l := range d.Listeners {
		versions[l.Name] = l.Version
	}
	if versions["web"] != "2" || versions["new"] != "3" {
		t.Errorf("per-resource versions in the dump: %v", versions)
	}
}

// TestRepeatedNackBackoff: a server that answers every NACK with the same bad response at
// once gets NACKs further and further apart, not as fast as the two can loop.
func TestRepeatedNackBackoff(t *testing.T) {
	s := startScripted(t)
	run(t, s.addr, false, &applier{}, nil)
	st := s.accept(t)
	st.req(ListenerType)
	nacks := 0
	start := time.Now()
	for i := 0; time.Since(start) < time.Second; i++ {
		st.send(ListenerType, "bad", "n"+string(rune('a'+i%26)), badListener(t, "bad", 10003))
		r := st.req(ListenerType)
		if r.GetErrorDetail() == nil {
			t.Fatalf("a bad response was ACKed: %v", r)
		}
		nacks++
	}
	// Holds of 100, 200, 400, 800 ms: a handful of NACKs in a second, where without them
	// there would be thousands.
	if nacks > 20 {
		t.Errorf("%d NACKs of the same response in a second", nacks)
	}
}

// TestReconnectResumes ends the stream: the client opens a new one and says what it holds.
func TestReconnectResumes(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			s := startScripted(t)
			a := &applier{}
			run(t, s.addr, delta, a, nil)
			st := s.accept(t)
			l := staticRoutes(t, listener(t, "web", 10001, "r", -1))
			if delta {
				st.dreq(ListenerType)
				st.sendDelta(ListenerType, "n1", nil, map[string]proto.Message{"web": l}, "7")
				st.dreq(ListenerType)
			} else {
				st.req(ListenerType)
				st.send(ListenerType, "7", "n1", l)
				st.req(ListenerType)
			}
			wait.For(t, "the listener applies", func() bool { return slices.Equal(a.listeners(), []string{"web"}) })
			st.close()

			st = s.accept(t)
			if delta {
				r := st.dreq(ListenerType)
				if r.GetInitialResourceVersions()["web"] != "7" || r.GetResponseNonce() != "" {
					t.Fatalf("delta resume: %v", r)
				}
			} else {
				r := st.req(ListenerType)
				if r.GetVersionInfo() != "7" || r.GetResponseNonce() != "" {
					t.Fatalf("sotw resume: %v", r)
				}
			}
			if cds := st.next(ClusterType); cds.(interface{ GetNode() *corev3.Node }).GetNode().GetId() != "dp-1" {
				t.Fatal("no node on the new stream's first request")
			}
			// The configuration held stays in force across the reconnection.
			if !slices.Equal(a.listeners(), []string{"web"}) {
				t.Fatalf("listeners after reconnecting: %v", a.listeners())
			}
		})
	}
}

// TestReconnectBackoff: a server that ends every stream at once sees the client come back
// after waits that double, with jitter, up to the maximum.
func TestReconnectBackoff(t *testing.T) {
	s := startScripted(t)
	c := New(Options{Target: s.addr, Applier: &applier{}, BackoffMin: 20 * time.Millisecond, BackoffMax: 160 * time.Millisecond})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	var at []time.Time
	for range 7 {
		st := s.accept(t)
		at = append(at, time.Now())
		st.close()
	}
	// The waits are drawn from [b/2, b) with b = 20, 40, 80, 160, 160, 160 ms: from the
	// fourth on, none can be shorter than 80 ms.
	for i := 4; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 80*time.Millisecond {
			t.Errorf("reconnection %d came %v after the previous one", i, gap)
		}
	}
}

// TestInitialFetchTimeout covers initial_fetch_timeout: listeners and clusters that never
// come let the server initialize after it; a route table or endpoints that never come let
// the listener (empty route table) or cluster (no endpoints) go ahead; 0 waits for ever.
func TestInitialFetchTimeout(t *testing.T) {
	t.Run("lds and cds", func(t *testing.T) {
		s := startScripted(t)
		static := &model.Bootstrap{Dynamic: &model.DynamicResources{
			LDS: true, CDS: true,
			LDSSource: model.ConfigSource{InitialFetchTimeout: 100 * time.Millisecond},
			CDSSource: model.ConfigSource{InitialFetchTimeout: 100 * time.Millisecond},
		}}
		c := run(t, s.addr, false, &applier{}, static)
		s.accept(t) // the server never answers
		select {
		case <-c.Initialized():
		case <-time.After(wait.Timeout):
			t.Fatal("not initialized after initial_fetch_timeout")
		}
	})
	t.Run("zero waits", func(t *testing.T) {
		s := startScripted(t)
		static := &model.Bootstrap{Dynamic: &model.DynamicResources{LDS: true, CDS: true}}
		c := run(t, s.addr, false, &applier{}, static)
		st := s.accept(t)
		st.req(ListenerType)
		select {
		case <-c.Initialized():
			t.Fatal("initialized with no response and no timeout")
		case <-time.After(300 * time.Millisecond):
		}
		st.send(ClusterType, "1", "a")
		st.send(ListenerType, "1", "b")
		select {
		case <-c.Initialized():
		case <-time.After(wait.Timeout):
			t.Fatal("not initialized after the first responses")
		}
	})
	t.Run("rds and eds", func(t *testing.T) {
		s := startScripted(t)
		a := &applier{}
		c := run(t, s.addr, false, a, nil)
		st := s.accept(t)
		st.send(ClusterType, "1", "a", edsCluster("backend", 100*time.Millisecond))
		st.send(ListenerType, "1", "b", listener(t, "web", 10001, "main", 100*time.Millisecond))
		wait.For(t, "the listener and cluster go ahead without what they wait for", func() bool {
			n, ok := a.endpointCount("backend")
			rc := a.route("main")
			return slices.Equal(a.listeners(), []string{"web"}) && ok && n == 0 && rc != nil && len(rc.VirtualHosts) == 0
		})
		select {
		case <-c.Initialized():
		case <-time.After(wait.Timeout):
			t.Fatal("not initialized after the RDS and EDS timeouts")
		}
		// What arrives later is put in force.
		st.send(RouteType, "1", "c", routeTable("main", "/late"))
		st.send(EndpointType, "1", "d", cla("backend", 9001))
		wait.For(t, "the late route table and endpoints apply", func() bool {
			n, _ := a.endpointCount("backend")
			return firstPrefix(a.route("main")) == "/late" && n == 1
		})
	})
}

// TestGoControlPlane runs the client against go-control-plane's server with a snapshot cache
// (SotW and delta): configuration in, a listener removed, a bad listener NACKed by name.
func TestGoControlPlane(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(t *testing.T) {
			cache := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
			var mu sync.Mutex
			var nacks []string
			cb := serverv3.CallbackFuncs{
				StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
					mu.Lock()
					defer mu.Unlock()
					if m := r.GetErrorDetail().GetMessage(); m != "" {
						nacks = append(nacks, m)
					}
					return nil
				},
				StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
					mu.Lock()
					defer mu.Unlock()
					if m := r.GetErrorDetail().GetMessage(); m != "" {
						nacks = append(nacks, m)
					}
					return nil
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			srv := grpc.NewServer()
			discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, serverv3.NewServer(ctx, cache, cb))
			ln := loopback.Listen(t)
			served := make(chan struct{})
			go func() {
				defer close(served)
				srv.Serve(ln)
			}()
			t.Cleanup(func() {
				srv.Stop()
				<-served
			})
			version := 0
			set := func(ls ...types.Resource) {
				t.Helper()
				version++
				snap, err := cachev3.NewSnapshot(string(rune('0'+version)), map[resourcev3.Type][]types.Resource{
					resourcev3.ListenerType: ls,
					resourcev3.RouteType:    {routeTable("main", "/")},
					resourcev3.ClusterType:  {edsCluster("backend", -1)},
					resourcev3.EndpointType: {cla("backend", 9001)},
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := cache.SetSnapshot(context.Background(), "dp-1", snap); err != nil {
					t.Fatal(err)
				}
			}
			set(listener(t, "web", 10001, "main", -1), listener(t, "api", 10002, "main", -1))
			a := &applier{}
			run(t, ln.Addr().String(), delta, a, nil)
			wait.For(t, "the configuration applies", func() bool {
				n, _ := a.endpointCount("backend")
				return slices.Equal(a.listeners(), []string{"api", "web"}) && n == 1 && firstPrefix(a.route("main")) == "/"
			})
			set(listener(t, "web", 10001, "main", -1))
			wait.For(t, "the removed listener goes", func() bool { return slices.Equal(a.listeners(), []string{"web"}) })
			set(listener(t, "web", 10001, "main", -1), badListener(t, "bad", 10003))
			wait.For(t, "the bad listener is NACKed by name", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, n := range nacks {
					if strings.Contains(n, `listener "bad": tcp_fast_open_queue_length`) {
						return true
					}
				}
				return false
			})
			if !slices.Equal(a.listeners(), []string{"web"}) {
				t.Fatalf("listeners after the NACK: %v", a.listeners())
			}
		})
	}
}

// TestStaticClash: an update may not bring in a listener or cluster named like a static one,
// but one already in place before (not changed by the update) is left to the build.
func TestStaticClash(t *testing.T) {
	static := []*model.Cluster{{Name: "a"}, {Name: "b"}}
	name := func(c *model.Cluster) string { return c.Name }
	for _, tc := range []struct {
		name    string
		merged  []string
		changed []string
		wantErr string
	}{
		{name: "no clash", merged: []string{"c"}, changed: []string{"c"}},
		{name: "changed clash", merged: []string{"b", "c"}, changed: []string{"b"}, wantErr: `cluster "b": a static cluster has that name`},
		{name: "unchanged name", merged: []string{"b", "c"}, changed: []string{"c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			merged, changed := map[string]int{}, map[string]bool{}
			for _, n := range tc.merged {
				merged[n] = 1
			}
			for _, n := range tc.changed {
				changed[n] = true
			}
			err := staticClash("cluster", static, name, merged, changed)
			if got := fmt.Sprint(err); tc.wantErr != "" && got != tc.wantErr || tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
