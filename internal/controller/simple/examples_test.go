package simple

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// TestExamples keeps the shipped examples valid, and checks that the files they point at exist
// once relative paths are resolved against the example's directory.
func TestExamples(t *testing.T) {
	examples, err := filepath.Glob("../../../examples/simple/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"basic.yaml", "redirects.yaml", "tls.yaml", "weighted.yaml"}
	if len(examples) < len(want) {
		t.Fatalf("found %d examples, want at least %v", len(examples), want)
	}
	for _, path := range examples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b, err := TranslateFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := envoyconfig.MarshalYAML(b); err != nil {
				t.Fatal(err)
			}
			files := referencedFiles(b.ProtoReflect())
			if filepath.Base(path) == "tls.yaml" && len(files) == 0 {
				t.Error("tls.yaml references no certificate files")
			}
			for _, f := range files {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("referenced file: %v", err)
				}
			}
		})
	}
}

// referencedFiles lists the filenames of every DataSource in m, looking inside typed_config.
func referencedFiles(m protoreflect.Message) []string {
	var files []string
	if ds, ok := m.Interface().(*corev3.DataSource); ok {
		if f := ds.GetFilename(); f != "" {
			files = append(files, f)
		}
	}
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err == nil {
			files = append(files, referencedFiles(inner.ProtoReflect())...)
		}
		return files
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Message() == nil:
		case fd.IsList():
			for i := range v.List().Len() {
				files = append(files, referencedFiles(v.List().Get(i).Message())...)
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Message() != nil {
					files = append(files, referencedFiles(mv.Message())...)
				}
				return true
			})
		default:
			files = append(files, referencedFiles(v.Message())...)
		}
		return true
	})
	return files
}

// TestExampleCertificates checks that the committed test certificates load as key pairs and
// cover the hosts tls.yaml serves with them.
func TestExampleCertificates(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
	}{
		{name: "site", hosts: []string{"example.test", "www.example.test"}},
		{name: "api", hosts: []string{"api.example.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := "../../../examples/simple/certs/"
			pair, err := tls.LoadX509KeyPair(dir+tc.name+".pem", dir+tc.name+"-key.pem")
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.hosts {
				if err := pair.Leaf.VerifyHostname(h); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
