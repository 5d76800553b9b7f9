// Package bootstrap loads a static configuration file (an Envoy v3 bootstrap or the simple
// Nuncio format, told apart by the file's apiVersion) and provides the built-in default config.
package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/internal/controller/simple"
	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/model"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// SimpleAPIVersion is the apiVersion that marks a file as the simple Nuncio format.
const SimpleAPIVersion = "nuncio.dev/v1alpha1"

// Load reads the config file at path, translates the simple format to an Envoy bootstrap if
// need be, and decodes and validates the bootstrap. It returns the model and the bootstrap it
// came from (for config dumps). Every error starts with path.
func Load(path string, reg *httpfilter.Registry) (*model.Bootstrap, *bootstrapv3.Bootstrap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path goes in front, like every other error
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	b, err := parse(path, data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := decode.Bootstrap(b, reg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, b, nil
}

// parse turns a file's bytes into a bootstrap, whichever of the two formats it holds.
func parse(path string, data []byte) (*bootstrapv3.Bootstrap, error) {
	switch v := apiVersion(data); {
	case v == "":
		return envoyconfig.UnmarshalBootstrap(data)
	case v != SimpleAPIVersion:
		return nil, fmt.Errorf("apiVersion: %q not supported (want %s, or an Envoy v3 bootstrap without apiVersion)", v, SimpleAPIVersion)
	}
	cfg, err := simple.Parse(data)
	if err != nil {
		return nil, err
	}
	// The simple format names certificate files relative to itself, not to the working
	// directory as Envoy does.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return simple.Options{BaseDir: dir}.Translate(cfg)
}

// apiVersion returns the top-level apiVersion of a YAML or JSON document, "" if it has none
// (an Envoy bootstrap). A document that does not parse is left to the Envoy reader, whose
// errors say where the syntax breaks.
func apiVersion(data []byte) string {
	var head struct {
		APIVersion any `json:"apiVersion"`
	}
	if err := yaml.Unmarshal(data, &head); err != nil || head.APIVersion == nil {
		return ""
	}
	return strings.TrimSpace(fmt.Sprint(head.APIVersion))
}
