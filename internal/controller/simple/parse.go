// Package simple translates the Nuncio simple config (api/v1alpha1) into Envoy v3 resources.
package simple

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

// Parse reads a simple config from YAML or JSON and validates it. Unknown or misspelt fields,
// duplicate keys and values of the wrong type are errors naming the field's path.
func Parse(data []byte) (*v1alpha1.Config, error) {
	// YAMLToJSONStrict rejects duplicate keys, which plain YAML decoding resolves silently.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok && doc != nil {
		return nil, fmt.Errorf("simple: a config must be a mapping with apiVersion, kind and listeners, got %s", jsonKind(doc))
	}
	if unmangleRetryOn(doc) {
		if js, err = json.Marshal(doc); err != nil {
			return nil, fmt.Errorf("simple: %w", err)
		}
	}
	// encoding/json matches field names ignoring case and cannot say where a value of the wrong
	// type was; checking the document against the Go types first gives exact, case-sensitive
	// field paths.
	if errs := checkShape(doc, reflect.TypeFor[v1alpha1.Config](), ""); len(errs) > 0 {
		return nil, problems(errs)
	}
	var cfg v1alpha1.Config
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("simple: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, problems(unjoin(err))
	}
	return &cfg, nil
}

// problems reports one error as itself and several as a list, one per line.
func problems(errs []error) error {
	if len(errs) == 1 {
		return fmt.Errorf("simple: %w", errs[0])
	}
	return fmt.Errorf("simple: %d problems:\n%w", len(errs), errors.Join(errs...))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var (
	durationType = reflect.TypeFor[v1alpha1.Duration]()
	endpointType = reflect.TypeFor[v1alpha1.Endpoint]()
)

// checkShape compares a decoded JSON value with the Go type it will be decoded into, reporting
// unknown fields (with a suggestion) and values of the wrong JSON type.
func checkShape(v any, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil // null leaves the zero value, as encoding/json does
	}
	fail := func(format string, args ...any) []error {
		p := path
		if p == "" {
			p = "(config)"
		}
		return []error{&v1alpha1.FieldError{Path: p, Msg: fmt.Sprintf(format, args...)}}
	}
	switch {
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			return fail("must be a duration string such as \"5s\", got %s", jsonKind(v))
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fail("invalid duration %q: use a number and a unit, such as \"500ms\", \"5s\" or \"1h\"", s)
		}
		return nil
	case t == endpointType:
		if _, ok := v.(string); ok {
			return nil
		}
		if _, ok := v.(map[string]any); !ok {
			return fail("must be \"host:port\" or {address, weight}, got %s", jsonKind(v))
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fail("must be a mapping, got %s", jsonKind(v))
		}
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if f.IsExported() && name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		var errs []error
		for _, k := range sortedKeys(m) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				msg := "unknown field"
				if s := suggest(k, fields); s != "" {
					msg += "; did you mean " + s + "?"
				}
				errs = append(errs, &v1alpha1.FieldError{Path: p, Msg: msg})
				continue
			}
			errs = append(errs, checkShape(m[k], ft, p)...)
		}
		return errs
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			return fail("must be a list, got %s", jsonKind(v))
		}
		var errs []error
		for i, e := range s {
			errs = append(errs, checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]")...)
		}
		return errs
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return fail("must be a mapping, got %s", jsonKind(v))
		}
		var errs []error
		for _, k := range sortedKeys(m) {
			errs = append(errs, checkShape(m[k], t.Elem(), path+"["+strconv.Quote(k)+"]")...)
		}
		return errs
	case reflect.String:
		if _, ok := v.(string); !ok {
			return fail("must be a string, got %s (quote it)", jsonKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return fail("must be true or false, got %s", jsonKind(v))
		}
	case reflect.Int, reflect.Uint32:
		f, ok := v.(float64)
		lo, hi := float64(math.MinInt32), float64(math.MaxInt32)
		if t.Kind() == reflect.Uint32 {
			lo, hi = 0, math.MaxUint32
		}
		if !ok || f != math.Trunc(f) || f < lo || f > hi {
			return fail("must be a whole number from %.0f to %.0f, got %s", lo, hi, jsonValue(v))
		}
	}
	return nil
}

// suggest returns the field name closest to a misspelt one, if any is close.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		d := editDistance(strings.ToLower(k), strings.ToLower(name))
		if d < bestDist || d == bestDist && best != "" && name < best {
			best, bestDist = name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

func jsonValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return jsonKind(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unmangleRetryOn renames the key "true" of each route's retries back to "on": YAML 1.1, which
// the YAML reader follows, reads a bare on as the boolean true, and retries.on is meant to be
// written bare. It reports whether it renamed any.
func unmangleRetryOn(doc any) bool {
	renamed := false
	root, _ := doc.(map[string]any)
	listeners, _ := root["listeners"].([]any)
	for _, l := range listeners {
		lm, _ := l.(map[string]any)
		routes, _ := lm["routes"].([]any)
		for _, r := range routes {
			rm, _ := r.(map[string]any)
			rt, _ := rm["retries"].(map[string]any)
			if v, ok := rt["true"]; ok {
				if _, dup := rt["on"]; !dup {
					delete(rt, "true")
					rt["on"] = v
					renamed = true
				}
			}
		}
	}
	return renamed
}
