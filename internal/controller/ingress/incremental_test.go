package ingress

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsgen"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

func mustEncode(t *testing.T, enc *xdsgen.Encoder, in Input) xdsresources.Resources {
	t.Helper()
	r, err := enc.ToXDS(Translate(in, Options{}).Config)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := xdsgen.ToXDS(Translate(in, Options{}).Config)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.MarshalYAML()
	want, _ := fresh.MarshalYAML()
	if string(got) != string(want) {
		t.Fatalf("incremental encoding differs from a fresh one:\n%s\nwant:\n%s", got, want)
	}
	return r
}

// TestEncoderReusesUnchanged checks that an Ingress change re-encodes only its host, and that
// an endpoint change replaces only the ClusterLoadAssignment of the Service's clusters: every
// other resource is the previous message.
func TestEncoderReusesUnchanged(t *testing.T) {
	in := scaleInput(20) // 20 Ingresses, hosts h0..h19, over 4 Services
	var enc xdsgen.Encoder
	r1 := mustEncode(t, &enc, in)

	in.Clusters[0].Ingresses[3].Spec.Rules[0].Host = "changed.example.com"
	r2 := mustEncode(t, &enc, in)
	old := map[string]any{}
	for _, vh := range r1.Routes[0].GetVirtualHosts() {
		old[vh.GetName()] = vh
	}
	for _, vh := range r2.Routes[0].GetVirtualHosts() {
		switch prev, ok := old[vh.GetName()]; {
		case vh.GetName() == "changed.example.com":
			if ok {
				t.Error("the new host was not encoded")
			}
		case !ok:
			t.Errorf("host %s appeared", vh.GetName())
		case prev != any(vh):
			t.Errorf("unchanged host %s encoded again", vh.GetName())
		}
	}
	for i := range r1.Clusters {
		if r1.Clusters[i] != r2.Clusters[i] || r1.Endpoints[i] != r2.Endpoints[i] {
			t.Errorf("cluster %s encoded again on a host change", r1.Clusters[i].GetName())
		}
	}

	es := in.Clusters[0].EndpointSlices[1]
	es.Endpoints = es.Endpoints[:2]
	r3 := mustEncode(t, &enc, in)
	for i, vh := range r3.Routes[0].GetVirtualHosts() {
		if vh != r2.Routes[0].GetVirtualHosts()[i] {
			t.Errorf("host %s encoded again on an endpoint change", vh.GetName())
		}
	}
	changed := 0
	for i := range r2.Clusters {
		if r2.Clusters[i] != r3.Clusters[i] {
			t.Errorf("cluster %s rebuilt on an endpoint change", r2.Clusters[i].GetName())
		}
		if r2.Endpoints[i] != r3.Endpoints[i] {
			changed++
			if r3.Endpoints[i].GetClusterName() != r2.Endpoints[i].GetClusterName() {
				t.Fatal("assignments out of order")
			}
		}
	}
	if changed == 0 {
		t.Error("the changed Service's assignment was reused")
	}
	for i, l := range r3.Listeners {
		if !proto.Equal(l, r2.Listeners[i]) {
			t.Errorf("listener %s changed on an endpoint change", l.GetName())
		}
	}
}
