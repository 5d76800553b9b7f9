package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string: "500ms", "5s", "1h30m".
type Duration struct {
	time.Duration
}

// D returns a *Duration of d, for building configs in code.
func D(d time.Duration) *Duration { return &Duration{Duration: d} }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a duration string. Bare numbers are rejected because their unit would be a
// guess ("30" could mean seconds or nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number and a unit, such as \"500ms\", \"5s\" or \"1h\"", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes an endpoint without a weight in its short form, "host:port".
func (e Endpoint) MarshalJSON() ([]byte, error) {
	if e.Weight == 0 && e.Priority == 0 {
		return json.Marshal(e.Address)
	}
	type plain Endpoint // without methods, so that Marshal does not recurse
	return json.Marshal(plain(e))
}

// UnmarshalJSON reads "host:port" or {"address": "host:port", "weight": n}.
func (e *Endpoint) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*e = Endpoint{}
		return json.Unmarshal(b, &e.Address)
	}
	// The outer decoder's DisallowUnknownFields does not reach into a custom unmarshaler, so
	// apply it again: a misspelt "wieght" must not be dropped silently.
	type plain Endpoint
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("endpoint must be \"host:port\" or {address, weight}: %w", err)
	}
	*e = Endpoint(p)
	return nil
}
