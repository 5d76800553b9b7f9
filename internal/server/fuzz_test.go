package server

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nuncio-gw/nuncio/internal/bootstrap"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/all" // the filters the binary has
	"github.com/nuncio-gw/nuncio/internal/stats"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// FuzzConfig runs arbitrary config files through the whole of a load, as `nuncio run -c`
// does it: the format sniffer, the Envoy reader or the simple translator, decode, and the
// snapshot build. Nothing may panic; a file is accepted or refused with an error that names
// it, and an accepted one builds or fails with an error. The build binds no port and starts
// no cluster: listeners and clusters are applied after it, which the fuzzer does not do.
func FuzzConfig(f *testing.F) {
	root, err := filepath.Abs("../..")
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for _, pattern := range []string{
		"examples/*/*.yaml",
		"internal/controller/simple/testdata/*.yaml",
		"internal/xds/decode/testdata/*.yaml",
	} {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			if strings.HasSuffix(file, ".out.yaml") {
				continue // outputs: translations of the inputs, or expected errors
			}
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			n++
		}
	}
	if n < 50 {
		f.Fatalf("%d seed files; a moved directory?", n)
	}
	f.Add([]byte(`{"static_resources": {"listeners": [{"name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}]}}`))
	f.Add([]byte(""))
	// Simple configs name files relative to themselves: with the file among the simple
	// examples, their certificates are found and TLS contexts are compiled too. (Envoy
	// bootstraps name them relative to the working directory, which a fuzz target may not
	// change: the fuzzing engine's workers would start elsewhere.)
	path := filepath.Join(root, "examples", "simple", "fuzz.yaml")
	st := stats.NewStore()
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := bootstrap.Parse(path, data)
		if err != nil {
			// Decode's error for the same bytes is this one, with the file in front.
			if _, _, derr := Decode(path, data, httpfilter.Default); derr == nil || derr.Error() != path+": "+err.Error() {
				t.Fatalf("Parse: %v; Decode: %v", err, derr)
			}
			return
		}
		quietAccessLogs(src.ProtoReflect())
		b, err := decode.Bootstrap(src, httpfilter.Default)
		if err != nil {
			return
		}
		// A server of its own per input: route slots and cluster refs, which live as long as
		// the server, do not pile up across inputs.
		s := New(Options{Logger: slog.New(slog.DiscardHandler), Stats: st})
		defer s.stats.release()
		snap, err := s.build(b, src)
		if err == nil && (snap == nil || len(snap.Listeners) != len(b.Listeners)) {
			t.Fatalf("build accepted %d listeners and compiled %v", len(b.Listeners), snap)
		}
	})
}

// quietAccessLogs points every file access log in m at /dev/null. Decode opens access log
// files, creating them, and a fuzzed path would otherwise leave files anywhere.
func quietAccessLogs(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				quietAccessLogs(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				quietAccessLogs(mv.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			quietAccessLogs(v.Message())
		}
		return true
	})
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return // decode refuses it
	}
	quietAccessLogs(inner.ProtoReflect())
	if fl, ok := inner.(*filev3.FileAccessLog); ok && fl.Path != "" {
		fl.Path = os.DevNull
	}
	_ = a.MarshalFrom(inner)
}
