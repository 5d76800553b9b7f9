package source

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/controller/xdsresources"
)

// FuzzTranslate feeds arbitrary files through the controller's whole pipeline (format
// detection, simple translation or Envoy decoding, xdsresources, validation): it must not panic, and
// what it accepts must be the same when translated again through the decode cache.
func FuzzTranslate(f *testing.F) {
	for _, pattern := range []string{"../xdsresources/testdata/*.in.yaml", "../../../examples/*/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(bootstrapJSON(80, 81)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r1, err := Translate("/etc/nuncio/fuzz.yaml", data)
		if err != nil {
			return
		}
		// Through the cache, as the file source's second read of the same file.
		c := new(decodeCache)
		if _, err := c.translate("/etc/nuncio/fuzz.yaml", data); err != nil {
			t.Fatal(err)
		}
		r2, err := c.translate("/etc/nuncio/fuzz.yaml", data)
		if err != nil {
			t.Fatalf("accepted once, rejected through the cache: %v", err)
		}
		if !bytes.Equal(wire(t, r1), wire(t, r2)) {
			t.Fatal("same input, different resources")
		}
	})
}

// wire serializes every resource deterministically, as the xDS server's version hashes see it.
func wire(t *testing.T, r xdsresources.Resources) []byte {
	var out []byte
	add := func(m proto.Message) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	for _, m := range r.Listeners {
		add(m)
	}
	for _, m := range r.Routes {
		add(m)
	}
	for _, m := range r.Clusters {
		add(m)
	}
	for _, m := range r.Endpoints {
		add(m)
	}
	for _, m := range r.Secrets {
		add(m)
	}
	return out
}
