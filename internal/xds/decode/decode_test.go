package decode_test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/testutil/golden"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// The golden files show compiled filter configs, so the tests register stand-ins whose config
// shape is fixed here rather than follow the real filters' internals: one for the router's type
// URL and one non-terminal filter with per-route overrides (on CORS's types, which only need to
// resolve). internal/bootstrap's tests run the real router through httpfilter.Default.
const (
	routerTypeURL     = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	corsTypeURL       = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
	corsPolicyTypeURL = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
)

type testRouter struct{}

type routerConfig struct{ SuppressEnvoyHeaders bool }

func (routerConfig) Phases() httpfilter.Phases { return 0 }

func (routerConfig) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return nil }

func (testRouter) Info() httpfilter.Info {
	return httpfilter.Info{Name: "envoy.filters.http.router", TypeURLs: []string{routerTypeURL}, Terminal: true}
}

func (testRouter) NewConfig(m proto.Message) (httpfilter.Config, error) {
	r := m.(*routerv3.Router)
	if r.GetStartChildSpan() {
		return nil, fmt.Errorf("start_child_span: not supported")
	}
	return routerConfig{SuppressEnvoyHeaders: r.GetSuppressEnvoyHeaders()}, nil
}

func (testRouter) NewOverride(proto.Message) (httpfilter.Config, error) {
	return nil, fmt.Errorf("router: typed_per_filter_config is not supported")
}

type testCORS struct{}

type corsConfig struct{ Origins []string }

func (corsConfig) Phases() httpfilter.Phases { return 0 }

func (corsConfig) NewFilter(*httpfilter.Stream, httpfilter.Config) httpfilter.Filter { return nil }

func (testCORS) Info() httpfilter.Info {
	return httpfilter.Info{Name: "envoy.filters.http.cors", TypeURLs: []string{corsTypeURL, corsPolicyTypeURL}}
}

func (testCORS) NewConfig(m proto.Message) (httpfilter.Config, error) {
	if _, ok := m.(*corsv3.Cors); !ok {
		return nil, fmt.Errorf("cors: want Cors, got %T", m)
	}
	return corsConfig{}, nil
}

func (testCORS) NewOverride(m proto.Message) (httpfilter.Config, error) {
	p, ok := m.(*corsv3.CorsPolicy)
	if !ok {
		return nil, fmt.Errorf("cors: want CorsPolicy, got %T", m)
	}
	var c corsConfig
	for _, o := range p.GetAllowOriginStringMatch() {
		c.Origins = append(c.Origins, o.GetExact())
	}
	return c, nil
}

func testRegistry() *httpfilter.Registry {
	r := httpfilter.NewRegistry()
	r.Register(testRouter{})
	r.Register(testCORS{})
	return r
}

// TestGolden decodes every testdata/<case>.yaml bootstrap. A case whose first line is
// "# expectError: <substring>" must fail with that substring; any other case must decode, and
// its model (rendered as YAML) is compared with testdata/<case>.out.yaml.
func TestGolden(t *testing.T) {
	golden.Prune(t, "testdata/*.out.yaml")
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	reg := testRegistry()
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".out.yaml") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, expectErr := expectedError(data)
			got, err := decodeBytes(data, reg)
			if expectErr {
				if err == nil {
					t.Fatalf("decoded without error, want error containing %q", want)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q does not contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(in, ".yaml")+".out.yaml", render(t, got))
		})
	}
	if n < 30 {
		t.Errorf("only %d golden cases; the decoder's coverage relies on at least 30", n)
	}
}

func decodeBytes(data []byte, reg *httpfilter.Registry) (*model.Bootstrap, error) {
	b, err := envoyconfig.UnmarshalBootstrap(data)
	if err != nil {
		return nil, err
	}
	return decode.Bootstrap(b, reg)
}

func expectedError(data []byte) (string, bool) {
	first, _, _ := bytes.Cut(data, []byte("\n"))
	s, ok := strings.CutPrefix(strings.TrimSpace(string(first)), "# expectError:")
	return strings.TrimSpace(s), ok
}

// render turns the model into stable, readable YAML: zero values and Source fields left out,
// durations and enums by name, byte slices as text when they are short text.
func render(t *testing.T, b *model.Bootstrap) []byte {
	t.Helper()
	out, err := yaml.Marshal(plain(reflect.ValueOf(b)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// enumNames names the model's enum values; a new enum constant shows up as a number until
// added here.
var enumNames = map[reflect.Type][]string{
	reflect.TypeOf(model.CodecType(0)):         {"auto", "http1", "http2"},
	reflect.TypeOf(model.UnderscoresAction(0)): {"allow", "reject_request", "drop_header"},
	reflect.TypeOf(model.AppendAction(0)):      {"append_if_exists_or_add", "add_if_absent", "overwrite_if_exists_or_add", "overwrite_if_exists"},
	reflect.TypeOf(model.PathMatchKind(0)):     {"prefix", "exact", "regex", "separated_prefix", "template"},
	reflect.TypeOf(model.StringMatchKind(0)):   {"exact", "prefix", "suffix", "contains", "regex"},
	reflect.TypeOf(model.HashPolicyKind(0)):    {"header", "cookie", "source_ip", "query_parameter"},
	reflect.TypeOf(model.HeaderMatchKind(0)):   {"string", "present", "range"},
	reflect.TypeOf(model.ClusterType(0)):       {"static", "strict_dns", "logical_dns", "eds"},
	reflect.TypeOf(model.LBPolicy(0)):          {"round_robin", "least_request", "random", "ring_hash", "maglev"},
	reflect.TypeOf(model.UpstreamProtocol(0)):  {"http1", "http2", "use_downstream"},
	reflect.TypeOf(model.DNSFamily(0)):         {"auto", "v4_only", "v6_only", "v4_preferred", "all"},
	reflect.TypeOf(model.SANType(0)):           {"unset", "dns", "uri", "email", "ip_address"},
	reflect.TypeOf(model.HealthCheckKind(0)):   {"http", "tcp", "grpc"},
}

// alwaysShown are fields whose zero value means something worth seeing in a golden file.
var alwaysShown = map[string]bool{"PathKind": true, "Kind": true, "Codec": true, "Type": true, "LBPolicy": true, "Protocol": true}

func plain(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Interface && v.Elem().Kind() == reflect.Struct && v.Elem().NumField() == 0 {
			return v.Elem().Type().String()
		}
		return plain(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		if v.NumField() == 0 {
			return v.Type().String()
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.Name == "Source" || !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if fv.IsZero() && !alwaysShown[f.Name] {
				continue
			}
			if strings.HasSuffix(f.Name, "PEM") {
				// Block types only: the fixtures may be regenerated with new keys.
				m[f.Name] = pemBlocks(fv.Bytes())
				continue
			}
			m[f.Name] = plain(fv)
		}
		return m
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := v.Bytes()
			if len(b) <= 512 && utf8.Valid(b) {
				return string(b)
			}
			return fmt.Sprintf("<%d bytes>", len(b))
		}
		l := make([]any, v.Len())
		for i := range l {
			l[i] = plain(v.Index(i))
		}
		return l
	case reflect.Map:
		m := map[string]any{}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			m[k.String()] = plain(v.MapIndex(k))
		}
		return m
	}
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if names, ok := enumNames[v.Type()]; ok {
		if i := int(v.Uint()); i < len(names) {
			return names[i]
		}
	}
	return v.Interface()
}

func pemBlocks(b []byte) string {
	var types []string
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		types = append(types, blk.Type)
	}
	return "<PEM " + strings.Join(types, ", ") + ">"
}

// FuzzDecodeBootstrap feeds arbitrary bytes through the reader and the decoder: whatever the
// input, they must return an error or a model, never panic.
func FuzzDecodeBootstrap(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("static_resources: {listeners: [{}]}"))
	f.Add([]byte(`{"static_resources": {"clusters": [{"name": "a", "load_assignment": {}}]}}`))
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeBytes(data, reg)
	})
}
