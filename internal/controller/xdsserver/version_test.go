package xdsserver

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// TestVersionerRouteConfiguration checks that a route configuration's version follows its
// content, whether its virtual hosts are the previous messages or new equal ones, and that a
// message seen in the previous snapshot keeps its version without being hashed again.
func TestVersionerRouteConfiguration(t *testing.T) {
	vh := func(name string) *routev3.VirtualHost {
		return &routev3.VirtualHost{Name: name, Domains: []string{name}}
	}
	a, b := vh("a"), vh("b")
	var v versioner
	v.begin()
	v1, err := v.version(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	v.begin()
	same, _ := v.version(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{a, vh("b")}})
	changed, _ := v.version(&routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{a, vh("c")}})
	renamed, _ := v.version(&routev3.RouteConfiguration{Name: "s", VirtualHosts: []*routev3.VirtualHost{a, b}})
	if same != v1 {
		t.Errorf("equal content: version %s, want %s", same, v1)
	}
	if changed == v1 || renamed == v1 {
		t.Error("changed content kept its version")
	}
	if _, ok := v.prev[proto.Message(a)]; !ok {
		t.Error("a virtual host's version was not remembered")
	}
	v.begin()
	v.begin()
	if len(v.prev) != 0 {
		t.Errorf("%d versions kept after a snapshot that used none", len(v.prev))
	}
}
