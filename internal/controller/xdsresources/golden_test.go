package xdsresources_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/controller/simple"
	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
)

const expectErrorPrefix = "# expectError:"

// TestGolden generates the served resources of each testdata/<case>.in.yaml (a simple config
// when it has an apiVersion, else an Envoy bootstrap) and compares them with <case>.out.yaml,
// or, for a case whose first line is "# expectError: <substring>", checks that generation or
// validation fails with an error containing it.
func TestGolden(t *testing.T) {
	golden.Prune(t, "testdata/*.out.yaml")
	inputs, err := filepath.Glob("testdata/*.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.in.yaml cases")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".in.yaml")
		out := strings.TrimSuffix(in, ".in.yaml") + ".out.yaml"
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r, err := generate(t, data)
			if want, ok := expectedError(data); ok {
				if err == nil {
					t.Fatalf("generated without error; want an error containing %q", want)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not contain %q", err, want)
				}
				if _, statErr := os.Stat(out); statErr == nil && !golden.Updating() {
					t.Errorf("%s is stale: the case expects an error (run with -update to delete it)", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.MarshalYAML()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, out, got)
		})
	}
}

func generate(t *testing.T, data []byte) (xdsresources.Resources, error) {
	t.Helper()
	var b *bootstrapv3.Bootstrap
	if bytes.Contains(data, []byte("\napiVersion: nuncio.dev/")) {
		cfg, err := simple.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		// A fixed base directory keeps file paths in the output independent of the checkout.
		if b, err = (simple.Options{BaseDir: "/etc/nuncio"}).Translate(cfg); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if b, err = envoyconfig.UnmarshalBootstrap(data); err != nil {
			t.Fatal(err)
		}
	}
	r, err := xdsresources.FromBootstrap(b)
	if err != nil {
		return r, err
	}
	return r, r.Validate()
}

func expectedError(data []byte) (string, bool) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	s, ok := strings.CutPrefix(string(first), expectErrorPrefix)
	return strings.TrimSpace(s), ok
}

// TestFromBootstrapLeavesInput checks that generation copies what it changes: the source's
// decode cache hands the same messages to every translation.
func TestFromBootstrapLeavesInput(t *testing.T) {
	data, err := os.ReadFile("testdata/grpc-api-listener.in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := envoyconfig.UnmarshalBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
	before := proto.Clone(b)
	r1, err := xdsresources.FromBootstrap(b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(b, before) {
		t.Fatal("FromBootstrap modified its input")
	}
	r2, err := xdsresources.FromBootstrap(b)
	if err != nil {
		t.Fatal(err)
	}
	y1, _ := r1.MarshalYAML()
	y2, _ := r2.MarshalYAML()
	if !bytes.Equal(y1, y2) {
		t.Error("two generations from one bootstrap differ")
	}
}
