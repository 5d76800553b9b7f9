package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// decodeCache keeps the listeners, virtual hosts and clusters decoded from the previous
// version of a file, keyed by a hash of their JSON, and the generator that turned them into
// xDS resources. Decoding JSON into protos is most of a reload's time at scale (a
// 10,000-route file), and a change usually touches one virtual host or one cluster: the others
// are reused as they were, down to the served messages and their versions.
//
// A listener's inline route tables are decoded one virtual host at a time: the listener is
// decoded with each table's virtual_hosts replaced by a placeholder (xdsresources.Placeholder), and
// the hosts are handed to the generator beside it, which puts them in the route
// configurations it serves.
//
// The cached messages are shared with the bootstrap handed to xdsresources, which copies what it
// changes, so they are never modified.
type decodeCache struct {
	listeners map[[32]byte]*cachedListener
	hosts     map[[32]byte]*routev3.VirtualHost
	clusters  map[[32]byte]*clusterv3.Cluster
	gen       xdsresources.Generator
}

// cachedListener is a listener decoded with placeholders, and the virtual hosts they stand for.
type cachedListener struct {
	l     *listenerv3.Listener
	hosts xdsresources.VirtualHosts
	keys  []hostEntry // every host with its cache key
}

type hostEntry struct {
	key [32]byte
	vh  *routev3.VirtualHost
}

// decodeBootstrap decodes an Envoy bootstrap in JSON element by element, reusing cached
// listeners, virtual hosts and clusters; with split false, listeners are decoded whole. It
// reports false when the document does not decode; the caller then runs the Envoy reader, whose
// errors name the field and line. The cache keeps only the elements of the last document
// decoded, so it does not grow with edits.
func (c *decodeCache) decodeBootstrap(js []byte, split bool) (*bootstrapv3.Bootstrap, xdsresources.VirtualHosts, bool) {
	p, ok := splitBootstrap(js)
	if !ok {
		return nil, nil, false
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(p.rest, b); err != nil {
		return nil, nil, false
	}
	if len(p.listeners)+len(p.clusters) > 0 && b.StaticResources == nil {
		b.StaticResources = &bootstrapv3.Bootstrap_StaticResources{}
	}
	listeners := make(map[[32]byte]*cachedListener, len(p.listeners))
	hosts := make(map[[32]byte]*routev3.VirtualHost, len(c.hosts))
	vhosts := xdsresources.VirtualHosts{}
	for _, raw := range p.listeners {
		key := sha256.Sum256(raw)
		if !split {
			key[0] ^= 1 // not the key of the same listener split
		}
		cl, ok := c.listeners[key]
		if !ok {
			if cl, ok = c.decodeListener(raw, split, hosts); !ok {
				return nil, nil, false
			}
		} else {
			// Keep the hosts of an unchanged listener for the next version.
			for _, e := range cl.keys {
				hosts[e.key] = e.vh
			}
		}
		listeners[key] = cl
		for k, v := range cl.hosts {
			vhosts[k] = v
		}
		b.StaticResources.Listeners = append(b.StaticResources.Listeners, cl.l)
	}
	clusters := make(map[[32]byte]*clusterv3.Cluster, len(p.clusters))
	for _, raw := range p.clusters {
		key := sha256.Sum256(raw)
		cl, ok := c.clusters[key]
		if !ok {
			cl = &clusterv3.Cluster{}
			if err := protojson.Unmarshal(raw, cl); err != nil {
				return nil, nil, false
			}
		}
		clusters[key] = cl
		b.StaticResources.Clusters = append(b.StaticResources.Clusters, cl)
	}
	c.listeners, c.hosts, c.clusters = listeners, hosts, clusters
	return b, vhosts, true
}

// decodeListener decodes one listener's JSON; with split, each inline route table's virtual
// hosts apart, reusing c.hosts and recording every host in hosts.
func (c *decodeCache) decodeListener(raw []byte, split bool, hosts map[[32]byte]*routev3.VirtualHost) (*cachedListener, bool) {
	cl := &cachedListener{l: &listenerv3.Listener{}}
	skeleton := raw
	if split {
		arrays, ok := hostArrays(raw)
		if !ok {
			return nil, false
		}
		var buf bytes.Buffer
		last := 0
		for _, a := range arrays {
			elems := a.elems
			if len(elems) == 0 {
				continue
			}
			var vhs []*routev3.VirtualHost
			for _, e := range elems {
				k := sha256.Sum256(e)
				vh, ok := hosts[k]
				if !ok {
					vh, ok = c.hosts[k]
				}
				if !ok {
					vh = &routev3.VirtualHost{}
					if err := protojson.Unmarshal(e, vh); err != nil {
						return nil, false
					}
				}
				hosts[k] = vh
				vhs = append(vhs, vh)
				cl.keys = append(cl.keys, hostEntry{k, vh})
			}
			sum := sha256.Sum256(raw[a.start:a.end])
			name := hex.EncodeToString(sum[:16])
			if cl.hosts == nil {
				cl.hosts = xdsresources.VirtualHosts{}
			}
			cl.hosts[name] = vhs
			buf.Write(raw[last:a.start])
			ph, _ := json.Marshal(xdsresources.Placeholder(name))
			buf.WriteString(`[{"name":`)
			buf.Write(ph)
			buf.WriteString(`}]`)
			last = a.end
		}
		if last > 0 {
			buf.Write(raw[last:])
			skeleton = buf.Bytes()
		}
	}
	if err := protojson.Unmarshal(skeleton, cl.l); err != nil {
		return nil, false
	}
	return cl, true
}
