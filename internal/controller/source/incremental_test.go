package source

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// incrementalDoc is a bootstrap with one listener whose route table has a virtual host per
// prefix, each routing to cluster c<i>, and a STATIC cluster per endpoint port. extraFilter
// adds a listener filter before the connection manager.
func incrementalDoc(prefixes []string, ports []int, extraFilter string) string {
	var vhs, cs []string
	for i, p := range prefixes {
		vhs = append(vhs, fmt.Sprintf(`{"name": "vh%d", "domains": ["vh%d.example"], "routes": [{"match": {"prefix": %q}, "route": {"cluster": "c%d"}}]}`, i, i, p, i%len(ports)))
	}
	for i, p := range ports {
		cs = append(cs, fmt.Sprintf(`{"name": "c%d", "type": "STATIC", "load_assignment": {"cluster_name": "c%d", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": %d}}}}]}]}}`, i, i, p))
	}
	filters := `{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
		"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
		"stat_prefix": "in", "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
		"route_config": {"name": "local", "virtual_hosts": [` + strings.Join(vhs, ",") + `]}}}`
	if extraFilter != "" {
		filters = extraFilter + "," + filters
	}
	return `{"static_resources": {
	"listeners": [{"name": "l", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
		"filter_chains": [{"filters": [` + filters + `]}]}],
	"clusters": [` + strings.Join(cs, ",") + `]}}`
}

// plain translates doc without any cache or splitting: the Envoy reader and the generator.
func plain(t *testing.T, doc string) xdsresources.Resources {
	t.Helper()
	b, err := envoyconfig.UnmarshalBootstrap([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r, err := xdsresources.FromBootstrap(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameResources(t *testing.T, got, want xdsresources.Resources) {
	t.Helper()
	g, err := got.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.MarshalYAML()
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("incremental translation differs from a plain one:\n%s\nwant:\n%s", g, w)
	}
}

// TestTranslatorReusesUnchanged checks that a route change decodes and serves one new virtual
// host, keeping the other hosts', clusters' and assignments' messages, that an endpoint change
// replaces one assignment only, and that each result equals a translation from scratch.
func TestTranslatorReusesUnchanged(t *testing.T) {
	var tr Translator
	prefixes := []string{"/a", "/b", "/c"}
	doc1 := incrementalDoc(prefixes, []int{80, 81}, "")
	r1, err := tr.Translate("f.json", []byte(doc1))
	if err != nil {
		t.Fatal(err)
	}
	sameResources(t, r1, plain(t, doc1))

	doc2 := incrementalDoc([]string{"/a", "/b2", "/c"}, []int{80, 81}, "")
	r2, err := tr.Translate("f.json", []byte(doc2))
	if err != nil {
		t.Fatal(err)
	}
	sameResources(t, r2, plain(t, doc2))
	vh1, vh2 := r1.Routes[0].GetVirtualHosts(), r2.Routes[0].GetVirtualHosts()
	if vh1[0] != vh2[0] || vh1[2] != vh2[2] {
		t.Error("unchanged virtual hosts decoded again")
	}
	if vh1[1] == vh2[1] {
		t.Error("changed virtual host reused")
	}
	for i := range r1.Clusters {
		if r1.Clusters[i] != r2.Clusters[i] || r1.Endpoints[i] != r2.Endpoints[i] {
			t.Errorf("cluster %d not reused on a route change", i)
		}
	}

	doc3 := incrementalDoc([]string{"/a", "/b2", "/c"}, []int{80, 82}, "")
	r3, err := tr.Translate("f.json", []byte(doc3))
	if err != nil {
		t.Fatal(err)
	}
	sameResources(t, r3, plain(t, doc3))
	if r3.Listeners[0] != r2.Listeners[0] || r3.Routes[0] != r2.Routes[0] {
		t.Error("listener or route configuration rebuilt on an endpoint change")
	}
	if r3.Endpoints[0] != r2.Endpoints[0] || r3.Clusters[0] != r2.Clusters[0] {
		t.Error("unchanged cluster not reused")
	}
	if r3.Endpoints[1] == r2.Endpoints[1] {
		t.Error("changed assignment reused")
	}
	if proto.Equal(r3.Endpoints[1], r2.Endpoints[1]) {
		t.Error("changed assignment has the old endpoints")
	}
}

// TestTranslatorRouteConfigElsewhere checks that a route_config with virtual_hosts outside a
// connection manager (here in a TypedStruct, which holds any JSON) is left as written.
func TestTranslatorRouteConfigElsewhere(t *testing.T) {
	other := `{"name": "other", "typed_config": {"@type": "type.googleapis.com/xds.type.v3.TypedStruct",
		"type_url": "type.googleapis.com/example.Other",
		"value": {"route_config": {"virtual_hosts": [{"name": "not-a-host"}]}}}}`
	doc := incrementalDoc([]string{"/a"}, []int{80}, other)
	var tr Translator
	for range 2 {
		if _, err := tr.c.generate(sniffed(t, doc), true); !errors.Is(err, xdsresources.ErrUnusedVirtualHosts) {
			t.Fatalf("split decode: err = %v, want ErrUnusedVirtualHosts", err)
		}
		r, err := tr.Translate("f.json", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		sameResources(t, r, plain(t, doc))
	}
}

// TestSplitRefusesMalformed checks that the scanner refuses what is not JSON, so that the
// Envoy reader reports it.
func TestSplitRefusesMalformed(t *testing.T) {
	for _, doc := range []string{
		`{"static_resources": {"listeners": [{"name": "l"} {"name": "m"}]}}`,
		`{"static_resources": {"listeners": [{"name": "l"}],}}`,
		`{"static_resources": {"clusters": [{"name": "c}]}}`,
		`{"static_resources": {"clusters": []}} x`,
		`{"static_resources": {"clusters": [], "clusters": []}}`,
		`{"a" 1}`,
	} {
		if _, ok := splitBootstrap([]byte(doc)); ok {
			t.Errorf("%s: split", doc)
		}
	}
	p, ok := splitBootstrap([]byte(` {"node": {"id": "n\"}"}, "static_resources": {"listeners": [ {"name": "l"} , {"name": "m"} ], "secrets": []} } `))
	if !ok || len(p.listeners) != 2 || string(p.listeners[1]) != `{"name": "m"}` {
		t.Fatalf("split = %+v, %v", p, ok)
	}
	if want := `{"node":{"id": "n\"}"},"static_resources":{"secrets":[]}}`; string(p.rest) != want {
		t.Errorf("rest = %s, want %s", p.rest, want)
	}
}
