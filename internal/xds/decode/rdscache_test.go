package decode

import (
	"fmt"
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

func cacheTestConfig(prefix0 string) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: "rc", ValidateClusters: wrapperspb.Bool(false),
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "1"}}}}
	for v := range 3 {
		prefix := fmt.Sprintf("/v%d/", v)
		if v == 0 {
			prefix = prefix0
		}
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name: fmt.Sprintf("vh%d", v), Domains: []string{fmt.Sprintf("vh%d.example", v)},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}},
			}},
		})
	}
	return rc
}

// An unchanged virtual host is not decoded again: the new table holds the very same decoded
// value, and the result is what decoding the whole configuration gives.
func TestRouteCacheReusesUnchangedVirtualHosts(t *testing.T) {
	c := NewRouteCache()
	decodeVersion := func(prefix0 string) (*routev3.RouteConfiguration, []any) {
		t.Helper()
		rc := cacheTestConfig(prefix0)
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(rc)
		if err != nil {
			t.Fatal(err)
		}
		got, msg, err := c.RouteConfig(raw, httpfilter.Default)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(msg, rc) {
			t.Fatalf("message = %v, want %v", msg, rc)
		}
		want, err := RouteConfig(rc, httpfilter.Default)
		if err != nil {
			t.Fatal(err)
		}
		got.Source, want.Source = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded = %+v, want %+v", got, want)
		}
		var vhs []any
		for _, vh := range got.VirtualHosts {
			vhs = append(vhs, vh)
		}
		return msg, vhs
	}
	_, v1 := decodeVersion("/a/")
	if n := c.Decoded(); n != 3 {
		t.Fatalf("first version: %d virtual hosts decoded, want 3", n)
	}
	_, v2 := decodeVersion("/b/")
	if n := c.Decoded(); n != 4 {
		t.Fatalf("one virtual host changed: %d decoded in all, want 4", n)
	}
	if v1[0] == v2[0] {
		t.Error("the changed virtual host was reused")
	}
	for i := 1; i < 3; i++ {
		if v1[i] != v2[i] {
			t.Errorf("virtual_hosts[%d] unchanged but decoded again", i)
		}
	}
	c.Forget("rc")
	decodeVersion("/b/")
	if n := c.Decoded(); n != 7 {
		t.Fatalf("after Forget: %d decoded in all, want 7", n)
	}
}

// Errors name the virtual host's field as decoding the whole configuration does.
func TestRouteCacheErrors(t *testing.T) {
	rc := cacheTestConfig("/a/")
	rc.VirtualHosts[2].Domains = []string{"vh0.example"}
	raw, _ := proto.Marshal(rc)
	_, _, err := NewRouteCache().RouteConfig(raw, httpfilter.Default)
	_, want := RouteConfig(rc, httpfilter.Default)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("error = %v, want %v", err, want)
	}
	rc = cacheTestConfig("/a/")
	rc.VirtualHosts[1].RequireTls = routev3.VirtualHost_ALL
	raw, _ = proto.Marshal(rc)
	_, _, err = NewRouteCache().RouteConfig(raw, httpfilter.Default)
	_, want = RouteConfig(rc, httpfilter.Default)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Fatalf("error = %v, want %v", err, want)
	}
	if _, _, err := NewRouteCache().RouteConfig([]byte{0xff}, httpfilter.Default); err == nil {
		t.Fatal("garbage decoded")
	}
}
