package envoyconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"sigs.k8s.io/yaml"

	// The typed_config messages Nuncio understands. protojson resolves an Any's "@type" through
	// the global registry, so a type is only readable when its package is linked in.
	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// UnmarshalBootstrap parses an Envoy v3 Bootstrap from YAML or JSON (JSON is YAML). Unknown
// fields, unknown enum values and unresolvable Any types are errors, as they are for Envoy.
func UnmarshalBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	b := &bootstrapv3.Bootstrap{}
	if err := Unmarshal(data, b); err != nil {
		return nil, err
	}
	return b, nil
}

// UnmarshalBootstrapJSON is UnmarshalBootstrap for a document already converted to JSON by
// sigs.k8s.io/yaml: js is that JSON, and data the original document, whose lines errors name.
// It spares a caller that had to convert the document anyway a second YAML parse.
func UnmarshalBootstrapJSON(js, data []byte) (*bootstrapv3.Bootstrap, error) {
	b := &bootstrapv3.Bootstrap{}
	if err := unmarshalJSON(js, data, b); err != nil {
		return nil, err
	}
	return b, nil
}

// Unmarshal parses YAML or JSON into any Envoy proto message m.
func Unmarshal(data []byte, m protoreflect.ProtoMessage) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return unmarshalJSON(js, data, m)
}

// unmarshalJSON decodes js, the JSON form of data, into m.
func unmarshalJSON(js, data []byte, m protoreflect.ProtoMessage) error {
	// An empty document is an empty message, as for Envoy; YAMLToJSON renders it as null.
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil
	}
	err := protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(js, m)
	if err == nil {
		return nil
	}
	// protojson positions refer to the single-line JSON rendering, which means nothing to the
	// author of a YAML file. Walk the document ourselves to name the offending field instead.
	if loc := locate(js, m.ProtoReflect().Descriptor()); loc != nil {
		if line := findLine(data, loc.keys); line > 0 {
			return fmt.Errorf("line %d: %s: %s", line, loc.path, loc.msg)
		}
		return fmt.Errorf("%s: %s", loc.path, loc.msg)
	}
	return errors.New(stripJSONPosition(err.Error()))
}

var jsonPosition = regexp.MustCompile(`^proto:\s*(\(line \d+:\d+\):\s*)?`)

func stripJSONPosition(s string) string {
	return jsonPosition.ReplaceAllString(s, "")
}

// problem is the first field locate could not map onto the schema.
type problem struct {
	path string
	keys []string // object keys leading to the field, for findLine
	msg  string
}

// locate walks the JSON document alongside the message descriptor and reports the first unknown
// field, bad enum name or unresolvable Any type.
func locate(js []byte, md protoreflect.MessageDescriptor) *problem {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return walkMessage(v, md, "", nil)
}

func walkMessage(v any, md protoreflect.MessageDescriptor, path string, keys []string) *problem {
	if want, ok := wrapperKinds[md.FullName()]; ok {
		return checkScalar(v, want, path, keys)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if md.FullName().Parent() == "google.protobuf" || v == nil {
			return nil // well-known types with scalar JSON forms (Duration, Value, …)
		}
		return &problem{path: path, keys: keys, msg: fmt.Sprintf("want an object (%s), got %s", md.Name(), jsonKind(v))}
	}
	if md.FullName() == "google.protobuf.Any" {
		t, _ := obj["@type"].(string)
		if t == "" {
			return &problem{path: join(path, "@type"), keys: keys, msg: "missing type URL"}
		}
		name := t[strings.LastIndexByte(t, '/')+1:]
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
		if err != nil {
			return &problem{path: join(path, "@type"), keys: append(keys, "@type"),
				msg: fmt.Sprintf("unknown type %q", t)}
		}
		inner := mt.Descriptor()
		if isWellKnownJSON(inner) {
			return nil
		}
		rest := make(map[string]any, len(obj))
		for k, x := range obj {
			if k != "@type" {
				rest[k] = x
			}
		}
		return walkMessage(rest, inner, path, keys)
	}
	if md.FullName().Parent() == "google.protobuf" {
		return nil
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		p, ks := join(path, k), append(append([]string(nil), keys...), k)
		if fd == nil {
			return &problem{path: p, keys: ks, msg: fmt.Sprintf("unknown field %q in %s", k, md.FullName())}
		}
		if pr := walkField(obj[k], fd, p, ks); pr != nil {
			return pr
		}
	}
	return nil
}

func walkField(v any, fd protoreflect.FieldDescriptor, path string, keys []string) *problem {
	switch {
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, x := range m {
			if pr := walkValue(x, fd.MapValue(), fmt.Sprintf("%s[%q]", path, k), append(keys, k)); pr != nil {
				return pr
			}
		}
	case fd.IsList():
		l, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, x := range l {
			if pr := walkValue(x, fd, path+"["+strconv.Itoa(i)+"]", keys); pr != nil {
				return pr
			}
		}
	default:
		return walkValue(v, fd, path, keys)
	}
	return nil
}

func walkValue(v any, fd protoreflect.FieldDescriptor, path string, keys []string) *problem {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return walkMessage(v, fd.Message(), path, keys)
	case protoreflect.StringKind, protoreflect.BytesKind:
		return checkScalar(v, "string", path, keys)
	case protoreflect.BoolKind:
		return checkScalar(v, "bool", path, keys)
	case protoreflect.EnumKind:
		s, ok := v.(string)
		if !ok || fd.Enum().FullName() == "google.protobuf.NullValue" {
			return nil
		}
		if fd.Enum().Values().ByName(protoreflect.Name(s)) == nil {
			var valid []string
			vals := fd.Enum().Values()
			for i := 0; i < vals.Len(); i++ {
				valid = append(valid, string(vals.Get(i).Name()))
			}
			return &problem{path: path, keys: keys,
				msg: fmt.Sprintf("unknown value %q (want one of %s)", s, strings.Join(valid, ", "))}
		}
	}
	return nil
}

// wrapperKinds are the JSON kinds of the wrapper types, which Envoy uses for optional scalars.
var wrapperKinds = map[protoreflect.FullName]string{
	"google.protobuf.BoolValue":   "bool",
	"google.protobuf.StringValue": "string",
	"google.protobuf.BytesValue":  "string",
}

// checkScalar catches the common YAML surprise of a scalar of the wrong kind (y, no and on are
// booleans in YAML 1.1; 1.0 is a number), which protojson reports without a location.
func checkScalar(v any, want, path string, keys []string) *problem {
	got := jsonKind(v)
	if got == want || got == "null" {
		return nil
	}
	msg := fmt.Sprintf("want a %s, got %s %v", want, got, v)
	if want == "string" {
		msg += " (quote the value)"
	}
	return &problem{path: path, keys: keys, msg: msg}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// isWellKnownJSON reports types whose JSON form is not an object of their fields, so an Any of
// them carries a "value" key instead.
func isWellKnownJSON(md protoreflect.MessageDescriptor) bool {
	return md.FullName().Parent() == "google.protobuf"
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// findLine finds the line of the last key, looking for each key of the path in turn after the
// previous one. It is a heuristic (list positions are not followed) that is right for the common
// case of a misspelt field.
func findLine(src []byte, keys []string) int {
	lines := strings.Split(string(src), "\n")
	at := 0
	found := 0
	for _, k := range keys {
		re := regexp.MustCompile(`(^|[\s{,\-])"?` + regexp.QuoteMeta(k) + `"?\s*:`)
		found = 0
		for i := at; i < len(lines); i++ {
			if re.MatchString(lines[i]) {
				found, at = i+1, i
				break
			}
		}
		if found == 0 {
			return 0
		}
	}
	return found
}
