package decode

import (
	"crypto/sha256"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
)

// RouteCache decodes successive versions of RDS route configurations from their wire form,
// reusing the virtual hosts that did not change. At scale a route configuration is large (10,000
// routes are 228 KiB and some 100,000 fields), RDS sends it whole for any change, and a change
// usually touches one virtual host: the others are neither unmarshalled nor checked nor decoded
// again. A reused virtual host is the same *model.VirtualHost and *routev3.VirtualHost as
// before, which is also what lets the route table compiler reuse its compiled form.
//
// A RouteCache is not safe for concurrent use.
type RouteCache struct {
	byName map[string]map[vhostKey]cachedVHost
	// decoded counts virtual hosts decoded rather than reused, for tests.
	decoded int
}

// vhostKey identifies a virtual host by its serialized form and the route configuration's
// limit on direct response bodies, the one setting of the enclosing table its decode reads.
type vhostKey struct {
	sum     [sha256.Size]byte
	maxBody uint32
}

type cachedVHost struct {
	msg *routev3.VirtualHost
	out *model.VirtualHost
}

// NewRouteCache returns an empty cache.
func NewRouteCache() *RouteCache {
	return &RouteCache{byName: map[string]map[vhostKey]cachedVHost{}}
}

// virtualHostsField is RouteConfiguration.virtual_hosts.
const virtualHostsField = 2

// RouteConfig decodes a serialized RouteConfiguration as RouteConfig does, and returns the
// message too. The cache then holds the virtual hosts of this version under its name, in
// place of those of the previous one.
func (c *RouteCache) RouteConfig(raw []byte, reg *httpfilter.Registry) (*model.RouteConfig, *routev3.RouteConfiguration, error) {
	fs := newFilterSet(reg)
	defer fs.logSkipped()
	// Split the virtual hosts' bytes from the rest. Fields keep their order, so unmarshalling
	// the rest and appending the virtual hosts gives what unmarshalling the whole would.
	var rest []byte
	var vhosts [][]byte
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, nil, protowire.ParseError(m)
		}
		if num == virtualHostsField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b[n:])
			vhosts = append(vhosts, v)
		} else {
			rest = append(rest, b[:n+m]...)
		}
		b = b[n+m:]
	}
	rc := &routev3.RouteConfiguration{}
	if err := proto.Unmarshal(rest, rc); err != nil {
		return nil, nil, err
	}
	if err := strict("", rc); err != nil {
		return nil, nil, err
	}
	out, maxBody, err := routeConfigHead("", rc, false)
	if err != nil {
		return nil, nil, err
	}
	prev := c.byName[rc.GetName()]
	next := make(map[vhostKey]cachedVHost, len(vhosts))
	rc.VirtualHosts = make([]*routev3.VirtualHost, len(vhosts))
	models := make([]*model.VirtualHost, len(vhosts))
	for i, b := range vhosts {
		key := vhostKey{sha256.Sum256(b), maxBody}
		e, ok := next[key]
		if !ok {
			e, ok = prev[key]
		}
		if !ok {
			vp := path("virtual_hosts").index(i)
			msg := &routev3.VirtualHost{}
			if err := proto.Unmarshal(b, msg); err != nil {
				return nil, nil, vp.errorf("%v", err)
			}
			if err := strict(vp, msg); err != nil {
				return nil, nil, err
			}
			out, err := virtualHost(vp, msg, fs, maxBody)
			if err != nil {
				return nil, nil, err
			}
			e = cachedVHost{msg, out}
			c.decoded++
		}
		next[key] = e
		rc.VirtualHosts[i], models[i] = e.msg, e.out
	}
	if err := addVirtualHosts("", out, models); err != nil {
		return nil, nil, err
	}
	c.byName[rc.GetName()] = next
	return out, rc, nil
}

// Forget drops what the cache holds for a route configuration no longer held.
func (c *RouteCache) Forget(name string) { delete(c.byName, name) }

// Decoded returns how many virtual hosts were decoded rather than reused so far.
func (c *RouteCache) Decoded() int { return c.decoded }
