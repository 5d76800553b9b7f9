package xdsserver

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	cachetypes "github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// served lists the resource types the controller serves, in the order updates are logged.
var served = []resourcev3.Type{
	resourcev3.ListenerType,
	resourcev3.RouteType,
	resourcev3.ClusterType,
	resourcev3.EndpointType,
	resourcev3.SecretType,
}

// shortNames are the xDS service names used in logs.
var shortNames = map[resourcev3.Type]string{
	resourcev3.ListenerType: "lds",
	resourcev3.RouteType:    "rds",
	resourcev3.ClusterType:  "cds",
	resourcev3.EndpointType: "eds",
	resourcev3.SecretType:   "sds",
}

// byType lists r's resources per type URL.
func byType(r xdsresources.Resources) map[resourcev3.Type][]cachetypes.Resource {
	m := make(map[resourcev3.Type][]cachetypes.Resource, len(served))
	for _, l := range r.Listeners {
		m[resourcev3.ListenerType] = append(m[resourcev3.ListenerType], l)
	}
	for _, rc := range r.Routes {
		m[resourcev3.RouteType] = append(m[resourcev3.RouteType], rc)
	}
	for _, c := range r.Clusters {
		m[resourcev3.ClusterType] = append(m[resourcev3.ClusterType], c)
	}
	for _, e := range r.Endpoints {
		m[resourcev3.EndpointType] = append(m[resourcev3.EndpointType], e)
	}
	for _, s := range r.Secrets {
		m[resourcev3.SecretType] = append(m[resourcev3.SecretType], s)
	}
	return m
}

// newSnapshot builds an immutable snapshot of r with versions derived from content.
//
// Every resource's version is a hash of its deterministic serialization, and a type's version
// is a hash of its resources' names and versions. So a type whose resources did not change keeps
// its version across updates, and the snapshot cache, which pushes a type to a state-of-the-world
// stream only when the type's version differs from what the stream has, does not push it. The
// per-resource versions are what the delta protocol compares: a delta stream is sent only the
// resources whose version changed, and the names of removed ones.
//
// The version map is filled here rather than left to the cache (ConstructVersionMap) because
// one snapshot is shared by every node, and the cache would build it lazily from the streams'
// goroutines at once.
//
// v remembers the versions of the previous snapshot's resources by message: a source that
// reuses the messages of unchanged resources (they are never modified once handed on) has
// only its changed ones serialized and hashed. A nil v hashes everything.
func newSnapshot(r xdsresources.Resources, v *versioner) (*cachev3.Snapshot, error) {
	if v == nil {
		v = new(versioner)
	}
	v.begin()
	snap := &cachev3.Snapshot{VersionMap: map[string]map[string]string{}}
	lists := byType(r)
	for _, typ := range served {
		items := make(map[string]cachetypes.ResourceWithTTL, len(lists[typ]))
		versions := make(map[string]string, len(lists[typ]))
		typeHash := sha256.New()
		for _, res := range lists[typ] { // sorted by name (xdsresources.Resources)
			name := cachev3.GetResourceName(res)
			ver, err := v.version(res)
			if err != nil {
				return nil, fmt.Errorf("xdsserver: %s %q: %w", shortNames[typ], name, err)
			}
			items[name] = cachetypes.ResourceWithTTL{Resource: res}
			versions[name] = ver
			typeHash.Write([]byte(name))
			typeHash.Write([]byte{0})
			typeHash.Write([]byte(ver))
			typeHash.Write([]byte{0})
		}
		// An empty type still gets a version, the hash of nothing: a client subscribed to it is
		// then told it has no resources instead of waiting for a first response forever.
		snap.Resources[cachev3.GetResponseType(typ)] = cachev3.Resources{
			Version: hex.EncodeToString(typeHash.Sum(nil)[:8]),
			Items:   items,
		}
		snap.VersionMap[typ] = versions
	}
	// The delta code looks up a map for every type a client asks for, served or not.
	for i := range cachetypes.UnknownType {
		if url, err := cachev3.GetResponseTypeURL(i); err == nil && snap.VersionMap[url] == nil {
			snap.VersionMap[url] = map[string]string{}
		}
	}
	return snap, nil
}

// versioner computes resource versions, remembering those of the previous snapshot by message.
type versioner struct {
	prev, cur map[proto.Message]string
}

// begin starts a snapshot: what the previous one did not reuse is forgotten, so the memory
// stays that of one snapshot.
func (v *versioner) begin() {
	v.prev, v.cur = v.cur, make(map[proto.Message]string, len(v.cur))
}

// version is a hash of m's deterministic serialization. A route configuration's is a hash of
// its other fields' serialization and its virtual hosts' versions instead: a route table of
// thousands of hosts whose one host changed is then hashed as that host, the others keeping the
// versions their messages had.
func (v *versioner) version(m proto.Message) (string, error) {
	if s, ok := v.prev[m]; ok {
		v.cur[m] = s
		return s, nil
	}
	if s, ok := v.cur[m]; ok {
		return s, nil
	}
	var sum []byte
	if rc, ok := m.(*routev3.RouteConfiguration); ok && len(rc.GetVirtualHosts()) > 0 {
		shell := &routev3.RouteConfiguration{}
		src, dst := rc.ProtoReflect(), shell.ProtoReflect()
		src.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
			if fd.Name() != "virtual_hosts" {
				dst.Set(fd, val)
			}
			return true
		})
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(shell)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		h.Write([]byte("route_configuration\x00"))
		h.Write(b)
		for _, vh := range rc.GetVirtualHosts() {
			s, err := v.version(vh)
			if err != nil {
				return "", err
			}
			h.Write([]byte{0})
			h.Write([]byte(s))
		}
		sum = h.Sum(nil)
	} else {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			return "", err
		}
		s := sha256.Sum256(b)
		sum = s[:]
	}
	s := hex.EncodeToString(sum[:8])
	v.cur[m] = s
	return s, nil
}

// Diff counts, per type, the resources an update added, changed and removed.
type Diff map[resourcev3.Type]TypeDiff

// TypeDiff is the change of one resource type.
type TypeDiff struct {
	Added, Changed, Removed []string
}

// Empty reports whether nothing of the type changed.
func (d TypeDiff) Empty() bool { return len(d.Added)+len(d.Changed)+len(d.Removed) == 0 }

func diff(old, cur *cachev3.Snapshot) Diff {
	d := Diff{}
	for _, typ := range served {
		var td TypeDiff
		var before map[string]string
		if old != nil {
			before = old.VersionMap[typ]
		}
		after := cur.VersionMap[typ]
		for name, v := range after {
			switch ov, ok := before[name]; {
			case !ok:
				td.Added = append(td.Added, name)
			case ov != v:
				td.Changed = append(td.Changed, name)
			}
		}
		for name := range before {
			if _, ok := after[name]; !ok {
				td.Removed = append(td.Removed, name)
			}
		}
		d[typ] = td
	}
	return d
}

// Empty reports whether the update changed nothing.
func (d Diff) Empty() bool {
	for _, td := range d {
		if !td.Empty() {
			return false
		}
	}
	return true
}

// String summarises the diff for logs, e.g. "rds: 1 changed; eds: 2 added, 1 removed".
func (d Diff) String() string {
	var parts []string
	for _, typ := range served {
		td := d[typ]
		if td.Empty() {
			continue
		}
		var counts []string
		for _, c := range []struct {
			n    int
			verb string
		}{{len(td.Added), "added"}, {len(td.Changed), "changed"}, {len(td.Removed), "removed"}} {
			if c.n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", c.n, c.verb))
			}
		}
		parts = append(parts, shortNames[typ]+": "+strings.Join(counts, ", "))
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}
