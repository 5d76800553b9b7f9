package source

import (
	"crypto/sha256"
	"encoding/json"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// decodeCache keeps the listeners and clusters decoded from the previous version of a file,
// keyed by a hash of their JSON. Decoding JSON into protos is most of a reload's time at scale
// (a 10,000-route file), and a change usually touches one listener or one cluster: the others
// are reused as they were.
//
// The cached messages are shared with the bootstrap handed to xdsgen, which copies what it
// changes, so they are never modified.
type decodeCache struct {
	listeners map[[32]byte]*listenerv3.Listener
	clusters  map[[32]byte]*clusterv3.Cluster
}

// decodeBootstrap decodes an Envoy bootstrap in JSON element by element, reusing cached
// listeners and clusters. It reports false when the document does not decode; the caller then
// runs the Envoy reader, whose errors name the field and line. The cache keeps only the
// elements of the last document decoded, so it does not grow with edits.
func (c *decodeCache) decodeBootstrap(js []byte) (*bootstrapv3.Bootstrap, bool) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, false
	}
	var sr map[string]json.RawMessage
	if raw, ok := top["static_resources"]; ok {
		if err := json.Unmarshal(raw, &sr); err != nil {
			return nil, false
		}
	}
	var ls, cs []json.RawMessage
	if err := unmarshalList(sr["listeners"], &ls); err != nil {
		return nil, false
	}
	if err := unmarshalList(sr["clusters"], &cs); err != nil {
		return nil, false
	}
	if sr != nil {
		delete(sr, "listeners")
		delete(sr, "clusters")
		rest, err := json.Marshal(sr)
		if err != nil {
			return nil, false
		}
		top["static_resources"] = rest
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return nil, false
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(rest, b); err != nil {
		return nil, false
	}

	listeners := make(map[[32]byte]*listenerv3.Listener, len(ls))
	clusters := make(map[[32]byte]*clusterv3.Cluster, len(cs))
	if len(ls)+len(cs) > 0 && b.StaticResources == nil {
		b.StaticResources = &bootstrapv3.Bootstrap_StaticResources{}
	}
	for _, raw := range ls {
		key := sha256.Sum256(raw)
		l, ok := c.listeners[key]
		if !ok {
			l = &listenerv3.Listener{}
			if err := protojson.Unmarshal(raw, l); err != nil {
				return nil, false
			}
		}
		listeners[key] = l
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, l)
	}
	for _, raw := range cs {
		key := sha256.Sum256(raw)
		cl, ok := c.clusters[key]
		if !ok {
			cl = &clusterv3.Cluster{}
			if err := protojson.Unmarshal(raw, cl); err != nil {
				return nil, false
			}
		}
		clusters[key] = cl
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, cl)
	}
	c.listeners, c.clusters = listeners, clusters
	return b, true
}

func unmarshalList(raw json.RawMessage, out *[]json.RawMessage) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}
