package client

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// kind is a resource type.
type kind uint8

const (
	kindLDS kind = iota
	kindRDS
	kindCDS
	kindEDS
	kindSDS
	numKinds
)

// Type URLs of the resources, as on the wire.
const (
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	SecretType   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
)

var kindInfo = [numKinds]struct {
	url, name string
	new       func() proto.Message
	nameOf    func(proto.Message) string
}{
	kindLDS: {ListenerType, "listener", func() proto.Message { return new(listenerv3.Listener) },
		func(m proto.Message) string { return m.(*listenerv3.Listener).GetName() }},
	kindRDS: {RouteType, "route_configuration", func() proto.Message { return new(routev3.RouteConfiguration) },
		func(m proto.Message) string { return m.(*routev3.RouteConfiguration).GetName() }},
	kindCDS: {ClusterType, "cluster", func() proto.Message { return new(clusterv3.Cluster) },
		func(m proto.Message) string { return m.(*clusterv3.Cluster).GetName() }},
	kindEDS: {EndpointType, "cluster_load_assignment", func() proto.Message { return new(endpointv3.ClusterLoadAssignment) },
		func(m proto.Message) string { return m.(*endpointv3.ClusterLoadAssignment).GetClusterName() }},
	kindSDS: {SecretType, "secret", func() proto.Message { return new(tlsv3.Secret) },
		func(m proto.Message) string { return m.(*tlsv3.Secret).GetName() }},
}

func (k kind) String() string { return kindInfo[k].name }

func kindOf(typeURL string) (kind, bool) {
	for k := range kindInfo {
		if kindInfo[k].url == typeURL {
			return kind(k), true
		}
	}
	return 0, false
}

// typeState is the protocol state of one resource type.
type typeState struct {
	kind     kind
	wildcard bool
	// want is the set of names to subscribe to (non-wildcard types).
	want map[string]bool
	// version is the version_info of the last accepted state-of-the-world response.
	version string
	// versions are the accepted resources' versions (incremental protocol), sent back as
	// initial_resource_versions on a new stream.
	versions map[string]string

	// rejectedVersion is the last version refused, with its error: a state-of-the-world
	// server sends it again after the NACK, and it is refused again without decoding.
	rejectedVersion string
	rejectedErr     error
	rejectedCount   int

	// Per stream: the last nonce received, whether a request was sent, and the names the
	// server was last told.
	nonce string
	sent  bool
	told  map[string]bool
}

func (ts *typeState) newStream() {
	ts.nonce, ts.sent, ts.told = "", false, nil
}

func (ts *typeState) wantNames() []string {
	return slices.Sorted(maps.Keys(ts.want))
}

// resource is one resource of a response. It arrives serialized: only a resource that
// differs from the one held is unmarshalled (msg, set by decodeUpdate), which at scale is most
// of the saving. A state-of-the-world EDS response carries every cluster's endpoints, and
// usually one of them changed.
type resource struct {
	name    string
	version string // incremental protocol only
	raw     []byte
	sum     [sha256.Size]byte // of raw
	msg     proto.Message
}

// newResource names the serialized resource raw of kind k (the name is field 1 of every
// resource type) unless name is given, and checksums it.
func newResource(k kind, name, version string, a *anypb.Any) (resource, error) {
	if a.GetTypeUrl() != kindInfo[k].url {
		return resource{}, fmt.Errorf("resource of type %s in a %s response", a.GetTypeUrl(), kindInfo[k].url)
	}
	raw := a.GetValue()
	if name == "" {
		var err error
		if name, err = wireName(raw); err != nil {
			return resource{}, err
		}
	}
	return resource{name: name, version: version, raw: raw, sum: sha256.Sum256(raw)}, nil
}

// wireName returns field 1, the name of a Listener, RouteConfiguration, Cluster, Secret and
// the cluster_name of a ClusterLoadAssignment, without unmarshalling the rest.
func wireName(b []byte) (string, error) {
	name := ""
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return "", protowire.ParseError(m)
		}
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			name = string(v) // the last one wins, as in unmarshalling
		}
		b = b[n+m:]
	}
	return name, nil
}

// update is one response, of either protocol.
type update struct {
	kind      kind
	delta     bool
	version   string // version_info (state of the world) or system_version_info
	nonce     string
	resources []resource
	removed   []string
	// err is set when the response could not even be read (an unknown type, a resource that
	// does not unmarshal); it is NACKed.
	err error
}

// transport speaks one of the two protocols on one stream.
type transport interface {
	recv() (*update, error)
	// subscribe tells the server about changes in what ts wants, if any.
	subscribe(ts *typeState) error
	// ack acknowledges u, or refuses it with err.
	ack(ts *typeState, u *update, err error) error
}

func nackStatus(err error) *statuspb.Status {
	return &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// nodeOnce is the node a stream names on its first request only: the server keeps it for the
// stream's life.
type nodeOnce struct {
	node *corev3.Node
	sent bool
}

// first returns a copy of the node the first time, nil after.
func (n *nodeOnce) first() *corev3.Node {
	if n.sent {
		return nil
	}
	n.sent = true
	return clone(n.node)
}

// sotwTransport is the state-of-the-world protocol (StreamAggregatedResources).
type sotwTransport struct {
	s    discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node nodeOnce
}

func (t *sotwTransport) send(req *discoveryv3.DiscoveryRequest) error {
	req.Node = t.node.first()
	return t.s.Send(req)
}

func (t *sotwTransport) subscribe(ts *typeState) error {
	names := ts.wantNames()
	if ts.wildcard {
		names = nil
		if ts.sent {
			return nil
		}
	} else if ts.sent && maps.Equal(ts.told, ts.want) || !ts.sent && len(names) == 0 {
		// An empty first request would be a wildcard subscription.
		return nil
	}
	ts.sent, ts.told = true, maps.Clone(ts.want)
	return t.send(&discoveryv3.DiscoveryRequest{
		TypeUrl: kindInfo[ts.kind].url, VersionInfo: ts.version, ResponseNonce: ts.nonce, ResourceNames: names,
	})
}

func (t *sotwTransport) ack(ts *typeState, u *update, err error) error {
	req := &discoveryv3.DiscoveryRequest{
		TypeUrl: kindInfo[ts.kind].url, VersionInfo: ts.version, ResponseNonce: u.nonce,
	}
	if !ts.wildcard {
		req.ResourceNames = ts.wantNames()
		ts.told = maps.Clone(ts.want)
	}
	if err != nil {
		req.ErrorDetail = nackStatus(err)
	}
	ts.sent = true
	return t.send(req)
}

func (t *sotwTransport) recv() (*update, error) {
	resp, err := t.s.Recv()
	if err != nil {
		return nil, err
	}
	u := &update{version: resp.GetVersionInfo(), nonce: resp.GetNonce()}
	k, ok := kindOf(resp.GetTypeUrl())
	if !ok {
		// Nothing to NACK against: the type was never asked for.
		return nil, fmt.Errorf("xds: response of unrequested type %s", resp.GetTypeUrl())
	}
	u.kind = k
	for i, a := range resp.GetResources() {
		r, err := newResource(k, "", "", a)
		if err != nil {
			u.err = fmt.Errorf("resources[%d]: %v", i, err)
			break
		}
		u.resources = append(u.resources, r)
	}
	return u, nil
}

// deltaTransport is the incremental protocol (DeltaAggregatedResources).
type deltaTransport struct {
	s    discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node nodeOnce
}

func (t *deltaTransport) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	req.Node = t.node.first()
	return t.s.Send(req)
}

func (t *deltaTransport) subscribe(ts *typeState) error {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: kindInfo[ts.kind].url}
	if !ts.sent {
		if !ts.wildcard && len(ts.want) == 0 {
			return nil // an empty first request would be a wildcard subscription
		}
		// The resources already held, so that the server sends only what changed.
		req.InitialResourceVersions = maps.Clone(ts.versions)
	}
	if ts.wildcard {
		if ts.sent {
			return nil
		}
	} else {
		for _, n := range ts.wantNames() {
			if !ts.told[n] {
				req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, n)
			}
		}
		for _, n := range slices.Sorted(maps.Keys(ts.told)) {
			if !ts.want[n] {
				req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, n)
			}
		}
		if ts.sent && len(req.ResourceNamesSubscribe) == 0 && len(req.ResourceNamesUnsubscribe) == 0 {
			return nil
		}
		ts.told = maps.Clone(ts.want)
	}
	ts.sent = true
	return t.send(req)
}

func (t *deltaTransport) ack(ts *typeState, u *update, err error) error {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: kindInfo[ts.kind].url, ResponseNonce: u.nonce}
	if err != nil {
		req.ErrorDetail = nackStatus(err)
	}
	return t.send(req)
}

func (t *deltaTransport) recv() (*update, error) {
	resp, err := t.s.Recv()
	if err != nil {
		return nil, err
	}
	u := &update{delta: true, version: resp.GetSystemVersionInfo(), nonce: resp.GetNonce(), removed: resp.GetRemovedResources()}
	k, ok := kindOf(resp.GetTypeUrl())
	if !ok {
		return nil, fmt.Errorf("xds: response of unrequested type %s", resp.GetTypeUrl())
	}
	u.kind = k
	for i, r := range resp.GetResources() {
		res, err := newResource(k, r.GetName(), r.GetVersion(), r.GetResource())
		if err != nil {
			u.err = fmt.Errorf("resources[%d] %q: %v", i, r.GetName(), err)
			break
		}
		u.resources = append(u.resources, res)
	}
	return u, nil
}
