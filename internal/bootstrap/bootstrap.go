// Package bootstrap turns a static configuration file into an Envoy v3 Bootstrap, whichever of
// the two formats it holds (an Envoy bootstrap in YAML or JSON, or the simple Nuncio format,
// told apart by the file's apiVersion), watches the file for changes, and provides the built-in
// default config.
//
// Both halves read files through it: `nuncio run` decodes the bootstrap into its model, and
// the controller's file source serves it over xDS. So it stops at the Envoy bootstrap and
// imports no data-plane package (the controller may not depend on one).
package bootstrap

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// SimpleAPIVersion is the apiVersion that marks a file as the simple Nuncio format.
const SimpleAPIVersion = v1alpha1.APIVersion

// Load reads the config file at path and returns the Envoy bootstrap it holds, translating the
// simple format. Every error starts with path.
func Load(path string) (*bootstrapv3.Bootstrap, error) {
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	b, err := Parse(path, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// Read reads the file at path. Its errors start with the path, once (an *fs.PathError would
// repeat the operation and the path).
func Read(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// Parse turns the bytes of the file at path into an Envoy bootstrap, whichever format they
// hold. Errors name the field and the reason, not the file: callers put the path in front.
func Parse(path string, data []byte) (*bootstrapv3.Bootstrap, error) {
	d, err := Sniff(path, data)
	if err != nil {
		return nil, err
	}
	return d.Bootstrap()
}
