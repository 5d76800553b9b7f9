package v1alpha1

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestSchemaUpToDate keeps the checked-in schema in step with the Go types it is generated from.
func TestSchemaUpToDate(t *testing.T) {
	got, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("nuncio.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("nuncio.schema.json is out of date: run go generate ./api/...")
	}
}

// TestSchemaDescribesEveryField fails when a field lacks a doc comment: the schema's descriptions
// are what editors show while a config is written.
func TestSchemaDescribesEveryField(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Defs map[string]struct {
			Description string                     `json:"description"`
			Properties  map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for name, def := range s.Defs {
		if def.Description == "" {
			t.Errorf("$defs.%s has no description", name)
		}
		for prop, raw := range def.Properties {
			var p struct{ Description string }
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			if p.Description == "" {
				t.Errorf("$defs.%s.properties.%s has no description", name, prop)
			}
		}
	}
}

func TestSchemaShape(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want string
	}{
		{name: "apiVersion is a constant", want: `"const": "nuncio.dev/v1alpha1"`},
		{name: "kind is a constant", want: `"const": "Config"`},
		{name: "protocol lists its values", want: `"http1",`},
		{name: "redirect codes are listed", want: `308`},
		{name: "endpoints take a string or an object", want: `"oneOf"`},
		{name: "durations are strings", want: `"#/$defs/Duration"`},
		{name: "unknown fields are rejected", want: `"additionalProperties": false`},
		{name: "required fields come from missing omitempty", want: "\"required\": [\n        \"name\",\n        \"address\",\n        \"routes\"\n      ]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(b), tc.want) {
				t.Errorf("schema does not contain %s", tc.want)
			}
		})
	}
}
