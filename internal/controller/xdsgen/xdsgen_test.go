package xdsgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

// TestGolden encodes each testdata/<case>.in.yaml (an IR config) and compares the xDS
// resources with <case>.out.yaml.
func TestGolden(t *testing.T) {
	golden.Prune(t, "testdata/*.out.yaml")
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no testdata/*.in.yaml cases (%v)", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var c ir.Config
			if err := yaml.UnmarshalStrict(data, &c); err != nil {
				t.Fatal(err)
			}
			r, err := ToXDS(&c)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.MarshalYAML()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(in, ".in.yaml")+".out.yaml", out)
		})
	}
}

// TestFeatureTable checks the table every feature registers in: named, in order, and each
// with at least one hook.
func TestFeatureTable(t *testing.T) {
	if len(features) == 0 {
		t.Fatal("no features registered")
	}
	for i, f := range features {
		if f.name == "" {
			t.Errorf("features[%d] has no name", i)
		}
		if i > 0 && features[i-1].order > f.order {
			t.Errorf("features out of order: %s (%d) before %s (%d)", features[i-1].name, features[i-1].order, f.name, f.order)
		}
		if f.networkFilters == nil && f.hcm == nil && f.httpFilters == nil && f.route == nil && f.routeAction == nil && f.cluster == nil {
			t.Errorf("feature %s has no hook", f.name)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a feature twice did not panic")
		}
	}()
	register(&feature{name: features[0].name})
}

// TestEncoderReusesUnchanged checks the incremental encoder on a config of its own: an
// unchanged virtual host and cluster keep their messages, and an endpoint change replaces the
// ClusterLoadAssignment only.
func TestEncoderReusesUnchanged(t *testing.T) {
	data, err := os.ReadFile("testdata/rds-policies.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	load := func() *ir.Config {
		var c ir.Config
		if err := yaml.UnmarshalStrict(data, &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	var enc Encoder
	r1, err := enc.ToXDS(load())
	if err != nil {
		t.Fatal(err)
	}
	c2 := load()
	c2.Cluster("web").Localities[0].Endpoints[1].Address = "10.0.0.3"
	r2, err := enc.ToXDS(c2)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Routes[0].GetVirtualHosts()[0] != r2.Routes[0].GetVirtualHosts()[0] {
		t.Error("unchanged virtual host re-encoded")
	}
	for i := range r1.Clusters {
		if r1.Clusters[i] != r2.Clusters[i] {
			t.Errorf("cluster %s re-encoded on an endpoint change", r1.Clusters[i].GetName())
		}
	}
	if r1.Endpoints[0] == r2.Endpoints[0] {
		t.Error("changed endpoints not re-encoded")
	}
}
