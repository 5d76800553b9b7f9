package envoyconfig

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// MarshalYAML renders an Envoy proto as the YAML Envoy's own loader reads: snake_case field names,
// Any messages expanded with their "@type", and map keys sorted.
//
// protojson output deliberately varies between runs (random spacing), so it is never compared or
// stored as is; going through YAML with sorted keys makes the result stable, which is what golden
// files and `nuncio translate --to envoy` need. Every Any's type must be linked into the binary.
func MarshalYAML(m proto.Message) ([]byte, error) {
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("envoyconfig: %w", err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("envoyconfig: %w", err)
	}
	return y, nil
}
