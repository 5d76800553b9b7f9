package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/controller/simple"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
)

// Format is the kind of document a config file holds.
type Format uint8

const (
	// Envoy is an Envoy v3 bootstrap in YAML or JSON: a document without apiVersion.
	Envoy Format = iota + 1
	// Simple is the simple Nuncio format: apiVersion nuncio.dev/v1alpha1.
	Simple
)

func (f Format) String() string {
	switch f {
	case Envoy:
		return "envoy"
	case Simple:
		return "simple"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ErrEmpty is the error for a file that holds no document (nothing but blanks and comments).
// It is refused rather than read as a config without listeners: a watcher sees an empty file
// mostly between an editor's truncate and its write, and serving nothing then would drop every
// listener.
var ErrEmpty = errors.New("file is empty (write {} for a config without resources)")

// Document is a config file's bytes with their format told.
type Document struct {
	// Path is the file the bytes came from: the simple format names files relative to it.
	Path string
	// Data is the file's content.
	Data []byte
	// Format is what Data holds.
	Format Format
	// JSON is Data in JSON form, converted once, for readers that decode the document piece by
	// piece (the controller's incremental translator) without parsing the YAML again. A document
	// that starts with '{' is taken as JSON unchecked (it may be YAML's flow style): a reader
	// that cannot decode JSON must fall back to Bootstrap, which reports errors by field and
	// line.
	JSON []byte
	// converted is true when JSON came out of the YAML parser, and so is well formed.
	converted bool
}

// Sniff tells the format of the bytes read from path: a top-level apiVersion of
// nuncio.dev/v1alpha1 is the simple format, no apiVersion an Envoy bootstrap, and any other
// apiVersion an error. It also refuses an empty file and a document whose syntax breaks in what
// it reads; a large JSON document is not read whole here, so its errors may come from
// Bootstrap. This is the one place the formats are told apart.
func Sniff(path string, data []byte) (*Document, error) {
	js := data
	if !looksJSON(data) {
		var err error
		if js, err = yaml.YAMLToJSON(data); err != nil {
			return nil, err
		}
	}
	if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, ErrEmpty
	}
	d := &Document{Path: path, Data: data, Format: Envoy, JSON: js, converted: !looksJSON(data)}
	v, ok := apiVersion(js)
	if !ok {
		// Not JSON after all: YAML's flow style starts with '{' as well.
		y, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, err
		}
		d.JSON, d.converted = y, true
		v, _ = apiVersion(y)
	}
	switch {
	case v == "":
	case v == SimpleAPIVersion:
		d.Format = Simple
	default:
		return nil, fmt.Errorf("apiVersion: %q not supported (want %s, or an Envoy v3 bootstrap without apiVersion)", v, SimpleAPIVersion)
	}
	return d, nil
}

// Bootstrap parses the document into an Envoy bootstrap, translating the simple format.
func (d *Document) Bootstrap() (*bootstrapv3.Bootstrap, error) {
	if d.Format != Simple {
		// Errors give the line in the original bytes.
		if d.converted {
			return envoyconfig.UnmarshalBootstrapJSON(d.JSON, d.Data)
		}
		return envoyconfig.UnmarshalBootstrap(d.Data)
	}
	cfg, err := simple.Parse(d.Data)
	if err != nil {
		return nil, err
	}
	// The simple format names certificate files relative to itself, not to the working
	// directory as Envoy does.
	dir, err := filepath.Abs(filepath.Dir(d.Path))
	if err != nil {
		return nil, err
	}
	return simple.Options{BaseDir: dir}.Translate(cfg)
}

func looksJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// apiVersion returns the top-level apiVersion of a JSON document, "" if it has none; ok is
// false when the document had to be decoded and is not JSON.
func apiVersion(js []byte) (v string, ok bool) {
	// Envoy bootstraps have no such key: a large one is not decoded only to find that out.
	if !bytes.Contains(js, []byte("apiVersion")) {
		return "", true
	}
	var head struct {
		APIVersion any `json:"apiVersion"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return "", false
	}
	if head.APIVersion == nil {
		return "", true
	}
	return strings.TrimSpace(fmt.Sprint(head.APIVersion)), true
}
