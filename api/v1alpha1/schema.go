package v1alpha1

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
)

// The schema's descriptions are the doc comments of the Go types, read from their own source so
// that there is one place to document a field.
//
//go:embed types.go
var typesSource string

//go:embed encoding.go
var encodingSource string

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://nuncio.dev/schemas/v1alpha1/config.schema.json"

// enums lists the allowed values of string and integer fields that take one of a few, keyed by
// "Type.Field". They are the same lists Validate checks against.
var enums = map[string][]any{
	"ListenerTLS.MinVersion": anys(tlsVersions),
	"Backend.Protocol":       anys(protocols),
	"LoadBalancer.Policy":    anys(lbPolicies),
	"Redirect.Code":          anys(redirectCodes),
}

// ranges bounds integer fields, keyed by "Type.Field".
var ranges = map[string][2]int{
	"Respond.Status": {200, 599},
	"Redirect.Port":  {1, 65535},
}

// Schema returns the JSON Schema (draft 2020-12) of Config, generated from the Go types: JSON
// names from json tags, required fields from the absence of omitempty, descriptions from doc
// comments. nuncio.schema.json is its checked-in output.
func Schema() ([]byte, error) {
	docs, err := parseDocs(typesSource, encodingSource)
	if err != nil {
		return nil, err
	}
	g := &schemaGen{docs: docs, defs: map[string]any{}}
	root := g.structSchema(reflect.TypeFor[Config]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = SchemaID
	root["title"] = "Nuncio config (" + APIVersion + ")"
	root["$defs"] = g.defs
	b, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

type schemaGen struct {
	// docs holds type docs by type name and field docs by "Type.Field".
	docs map[string]string
	defs map[string]any
}

var durationType = reflect.TypeFor[Duration]()

func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return g.ref(t, func() map[string]any {
			return map[string]any{
				"type":        "string",
				"description": g.docs[t.Name()],
				"pattern":     `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
				"examples":    []string{"500ms", "5s", "1h30m"},
			}
		})
	case t == reflect.TypeFor[Endpoint]():
		// Endpoint's UnmarshalJSON also takes the short "host:port" form.
		return g.ref(t, func() map[string]any {
			obj := g.structSchema(t)
			desc := obj["description"]
			delete(obj, "description")
			return map[string]any{
				"description": desc,
				"oneOf": []any{
					map[string]any{"type": "string", "description": "host:port"},
					obj,
				},
			}
		})
	}
	switch t.Kind() {
	case reflect.Struct:
		return g.ref(t, func() map[string]any { return g.structSchema(t) })
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": 1<<32 - 1}
	}
	panic(fmt.Sprintf("v1alpha1: no JSON Schema for Go type %s", t))
}

// ref puts a named type's schema in $defs once and refers to it, so that the schema reads like
// the Go types.
func (g *schemaGen) ref(t reflect.Type, build func() map[string]any) map[string]any {
	if _, ok := g.defs[t.Name()]; !ok {
		g.defs[t.Name()] = nil // reserve the name: a type may refer to itself
		g.defs[t.Name()] = build()
	}
	return map[string]any{"$ref": "#/$defs/" + t.Name()}
}

func (g *schemaGen) structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	for f := range t.Fields() {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || name == "" {
			continue
		}
		s := g.typeSchema(f.Type)
		k := t.Name() + "." + f.Name
		if doc := g.docs[k]; doc != "" {
			if _, isRef := s["$ref"]; isRef {
				// 2020-12 allows siblings of $ref, so the field's own doc can stay beside it.
				s = map[string]any{"$ref": s["$ref"], "description": doc}
			} else {
				s["description"] = doc
			}
		}
		if e, ok := enums[k]; ok {
			s["enum"] = e
		}
		if r, ok := ranges[k]; ok {
			s["minimum"], s["maximum"] = r[0], r[1]
		}
		switch k {
		case "Config.APIVersion":
			s["const"] = APIVersion
		case "Config.Kind":
			s["const"] = KindConfig
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if doc := g.docs[t.Name()]; doc != "" {
		s["description"] = doc
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// parseDocs reads type and field doc comments from Go source, each joined into one line.
func parseDocs(sources ...string) (map[string]string, error) {
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, src := range sources {
		f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("v1alpha1: reading doc comments: %w", err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				docs[ts.Name.Name] = oneLine(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, field := range st.Fields.List {
					for _, n := range field.Names {
						docs[ts.Name.Name+"."+n.Name] = oneLine(field.Doc)
					}
				}
			}
		}
	}
	return docs, nil
}

func oneLine(c *ast.CommentGroup) string {
	if c == nil {
		return ""
	}
	return strings.Join(strings.Fields(c.Text()), " ")
}

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
