package source

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
)

// sniffed is data as the file source hands it to the cache: read from f.json, its format told.
func sniffed(t *testing.T, data string) *bootstrap.Document {
	t.Helper()
	d, err := bootstrap.Sniff("f.json", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func bootstrapJSON(ports ...int) string {
	var cs []string
	for i, p := range ports {
		cs = append(cs, fmt.Sprintf(`{"name": "c%d", "load_assignment": {"cluster_name": "c%d", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.1", "port_value": %d}}}}]}]}}`, i, i, p))
	}
	return `{"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}}, "static_resources": {"clusters": [` + strings.Join(cs, ",") + `]}}`
}

// TestDecodeCache checks that an unchanged cluster is reused, a changed one decoded anew, and
// that a document the fast path cannot read still gets the Envoy reader's error.
func TestDecodeCache(t *testing.T) {
	c := new(decodeCache)
	b1, _, err := c.parse(sniffed(t, bootstrapJSON(80, 81)), true)
	if err != nil {
		t.Fatal(err)
	}
	b2, _, err := c.parse(sniffed(t, bootstrapJSON(80, 82)), true)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := b1.GetStaticResources().GetClusters(), b2.GetStaticResources().GetClusters()
	if len(c1) != 2 || len(c2) != 2 {
		t.Fatalf("clusters: %d then %d, want 2", len(c1), len(c2))
	}
	if c1[0] != c2[0] {
		t.Error("unchanged cluster decoded again")
	}
	if c1[1] == c2[1] {
		t.Error("changed cluster reused")
	}
	if b2.GetAdmin().GetAddress().GetSocketAddress().GetPortValue() != 9901 {
		t.Error("fields outside static_resources lost")
	}
	if len(c.clusters) != 2 {
		t.Errorf("cache holds %d clusters, want the last document's 2", len(c.clusters))
	}
	_, _, err = c.parse(sniffed(t, `{"static_resources": {"clusters": [{"name": "c", "bogus": 1}]}}`), true)
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("err = %v, want the Envoy reader's error naming the field", err)
	}
}
