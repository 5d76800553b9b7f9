package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rlcommonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// wantErr are substrings that the error must contain, each (empty: must parse).
		wantErr []string
	}{
		{name: "minimal", yaml: "domain: d\n"},
		{name: "basic", yaml: `
domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit: {unit: second, requests_per_unit: 500}
  - key: database
    value: default
    rate_limit: {unit: SECOND, requests_per_unit: 500}
`},
		{name: "nested, unlimited, shadow, detailed, replaces, numeric value", yaml: `
domain: d
descriptors:
  - key: k1
    value: 42
    shadow_mode: true
    detailed_metric: true
    rate_limit: {name: a, unit: minute, requests_per_unit: 1, replaces: [{name: b}]}
    descriptors:
      - key: k2
        rate_limit: {unlimited: true}
  - key: anchors
    rate_limit: &rl {unit: day, requests_per_unit: 3}
  - key: alias
    rate_limit: *rl
`},
		{name: "empty file", yaml: "", wantErr: []string{"t.yaml: empty file: a domain is required"}},
		{name: "bad yaml", yaml: "domain: [", wantErr: []string{"t.yaml: invalid YAML"}},
		{name: "not a mapping", yaml: "- a\n", wantErr: []string{"t.yaml:1: the file must be a mapping"}},
		{name: "two documents", yaml: "domain: a\n---\ndomain: b\n", wantErr: []string{"more than one YAML document"}},
		{name: "no domain", yaml: "descriptors: []\n", wantErr: []string{"t.yaml:1: domain: required"}},
		{name: "empty domain", yaml: "domain: \"\"\n", wantErr: []string{"t.yaml:1: domain: must not be empty"}},
		{name: "unknown top-level key", yaml: "domain: d\ndescriptor: []\n", wantErr: []string{"t.yaml:2: descriptor: unknown field"}},
		{name: "misspelled nested key", yaml: `
domain: d
descriptors:
  - key: a
    ratelimit: {unit: second, requests_per_unit: 1}
`, wantErr: []string{"t.yaml:5: descriptors[0].ratelimit: unknown field"}},
		{name: "empty key", yaml: `
domain: d
descriptors:
  - key: ""
`, wantErr: []string{"descriptors[0].key: must not be empty"}},
		{name: "missing key", yaml: `
domain: d
descriptors:
  - value: v
`, wantErr: []string{"t.yaml:4: descriptors[0].key: required"}},
		{name: "duplicate key", yaml: `
domain: d
descriptors:
  - key: a
    value: b
  - key: a
    value: b
`, wantErr: []string{"t.yaml:6: descriptors[1]: duplicate descriptor \"a_b\" at this level (first at line 4)"}},
		{name: "bad unit", yaml: `
domain: d
descriptors:
  - key: a
    descriptors:
      - key: b
        rate_limit: {unit: fortnight, requests_per_unit: 1}
`, wantErr: []string{"t.yaml:7: descriptors[0].descriptors[0].rate_limit.unit: \"fortnight\" is not one of"}},
		{name: "missing unit", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {requests_per_unit: 1}
`, wantErr: []string{"descriptors[0].rate_limit.unit: required"}},
		{name: "unlimited with unit", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {unlimited: true, unit: second}
`, wantErr: []string{"descriptors[0].rate_limit.unit: must not be set when unlimited is true"}},
		{name: "negative requests", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: -1}
`, wantErr: []string{"descriptors[0].rate_limit.requests_per_unit: must be a whole number"}},
		{name: "string bool", yaml: `
domain: d
descriptors:
  - key: a
    shadow_mode: "yes"
`, wantErr: []string{"descriptors[0].shadow_mode: must be true or false"}},
		{name: "replaces self", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {name: x, unit: second, requests_per_unit: 1, replaces: [{name: x}]}
`, wantErr: []string{"descriptors[0].rate_limit.replaces[0].name: a limit must not replace itself"}},
		{name: "replaces empty", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{name: ""}]}
`, wantErr: []string{"descriptors[0].rate_limit.replaces[0].name: required and not empty"}},
		{name: "list of non-maps", yaml: `
domain: d
descriptors:
  - a
`, wantErr: []string{"descriptors[0]: must be a mapping"}},
		{name: "unsupported feature", yaml: `
domain: d
descriptors:
  - key: a
    quota_mode: true
`, wantErr: []string{"descriptors[0].quota_mode: not supported by this service"}},
		{name: "every error reported", yaml: `
domain: d
descriptors:
  - key: a
    rate_limit: {unit: eon}
  - key: b
    bogus: 1
`, wantErr: []string{"descriptors[0].rate_limit.unit", "descriptors[1].bogus: unknown field"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

const lookupYAML = `
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: {unit: day, requests_per_unit: 5}
  - key: to_number
    rate_limit: {unit: day, requests_per_unit: 100}
  - key: remote_address
    rate_limit: {unit: second, requests_per_unit: 10}
  - key: remote_address
    value: 50.0.0.5
    rate_limit: {unit: second, requests_per_unit: 0}
  - key: path
    value: /api/*/items*
    rate_limit: {unit: minute, requests_per_unit: 7}
  - key: ldap
    rate_limit: {unlimited: true}
  - key: detailed
    detailed_metric: true
    rate_limit: {unit: hour, requests_per_unit: 1}
  - key: parent
    value: p
    rate_limit: {unit: second, requests_per_unit: 2}
`

func entries(kv ...string) []*rlcommonv3.RateLimitDescriptor_Entry {
	var out []*rlcommonv3.RateLimitDescriptor_Entry
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &rlcommonv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestLookup(t *testing.T) {
	f, err := Parse("m.yaml", []byte(lookupYAML))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build([]*File{f})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		domain  string
		entries []string
		// wantKey is the matched limit's stats key ("" for no limit).
		wantKey       string
		wantRequests  uint32
		wantUnlimited bool
	}{
		{name: "nested", domain: "messaging", entries: []string{"message_type", "marketing", "to_number", "1"}, wantKey: "messaging.message_type_marketing.to_number", wantRequests: 5},
		{name: "key only", domain: "messaging", entries: []string{"to_number", "1"}, wantKey: "messaging.to_number", wantRequests: 100},
		{name: "value preferred over key", domain: "messaging", entries: []string{"remote_address", "50.0.0.5"}, wantKey: "messaging.remote_address_50.0.0.5", wantRequests: 0},
		{name: "key fallback", domain: "messaging", entries: []string{"remote_address", "50.0.0.6"}, wantKey: "messaging.remote_address", wantRequests: 10},
		{name: "wildcard", domain: "messaging", entries: []string{"path", "/api/v1/items/3"}, wantKey: "messaging.path_/api/*/items*", wantRequests: 7},
		{name: "wildcard miss", domain: "messaging", entries: []string{"path", "/api/v1/users"}},
		{name: "unlimited", domain: "messaging", entries: []string{"ldap", "x"}, wantKey: "messaging.ldap", wantUnlimited: true},
		{name: "detailed metric", domain: "messaging", entries: []string{"detailed", "u1"}, wantKey: "messaging.detailed_u1", wantRequests: 1},
		{name: "request deeper than rule", domain: "messaging", entries: []string{"parent", "p", "child", "c"}},
		{name: "request shallower than rule", domain: "messaging", entries: []string{"message_type", "marketing"}},
		{name: "unknown key", domain: "messaging", entries: []string{"nope", "x"}},
		{name: "unknown domain", domain: "other", entries: []string{"to_number", "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := entries(tc.entries...)
			l := c.Lookup(tc.domain, e)
			if tc.wantKey == "" {
				if l != nil {
					t.Fatalf("Lookup = %s, want none", l.FullKey)
				}
				return
			}
			if l == nil {
				t.Fatalf("Lookup = none, want %s", tc.wantKey)
			}
			if got := StatKey(tc.domain, l, e); got != tc.wantKey {
				t.Errorf("StatKey = %q, want %q", got, tc.wantKey)
			}
			if l.RequestsPerUnit != tc.wantRequests || l.Unlimited != tc.wantUnlimited {
				t.Errorf("limit = %d unlimited=%v, want %d unlimited=%v", l.RequestsPerUnit, l.Unlimited, tc.wantRequests, tc.wantUnlimited)
			}
		})
	}
}

func TestLookupAllocs(t *testing.T) {
	f, _ := Parse("m.yaml", []byte(lookupYAML))
	c, _ := Build([]*File{f})
	e := entries("message_type", "marketing", "to_number", "2061111111")
	if n := testing.AllocsPerRun(100, func() { c.Lookup("messaging", e) }); n != 0 {
		t.Errorf("Lookup allocates %v times, want 0", n)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "domain: a\n")
	writeFile(t, filepath.Join(dir, "b.yml"), "domain: b\n")
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), "not: valid\n")
	writeFile(t, filepath.Join(dir, "README"), "not yaml at all: [\n")
	// A ConfigMap volume: files are symlinks into a ..data directory.
	if err := os.MkdirAll(filepath.Join(dir, "..2026", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "..2026", "c.yaml"), "domain: c\n")
	if err := os.Symlink("..2026", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "c.yaml"), filepath.Join(dir, "c.yaml")); err != nil {
		t.Fatal(err)
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domains() != 3 {
		t.Errorf("Domains = %d (%v), want 3", c.Domains(), c.Files)
	}

	writeFile(t, filepath.Join(dir, "d.yaml"), "domain: a\n")
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "d.yaml: domain: domain \"a\" is already defined in "+filepath.Join(dir, "a.yaml")) {
		t.Errorf("duplicate domain: err = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "domain: a\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		c   *Config
		err error
	}
	got := make(chan result, 16)
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, dir, func(c *Config, err error) { got <- result{c, err} }) }()
	wait := func(t *testing.T, ok func(result) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-got:
				if ok(r) {
					return
				}
			case <-deadline:
				t.Fatal("no matching reload within 10s")
			}
		}
	}
	// The watch may start after the first write; write until a reload is seen.
	tests := []struct {
		name string
		file string
		data string
		ok   func(result) bool
	}{
		{name: "bad file reports an error", file: "b.yaml", data: "domain: b\nbogus: 1\n", ok: func(r result) bool {
			return r.c == nil && r.err != nil && strings.Contains(r.err.Error(), "bogus: unknown field")
		}},
		{name: "fixed file loads", file: "b.yaml", data: "domain: b\n", ok: func(r result) bool { return r.c != nil && r.c.Domains() == 2 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop := make(chan struct{})
			go func() {
				for i := 0; i < 50; i++ {
					writeFile(t, filepath.Join(dir, tc.file), tc.data)
					select {
					case <-stop:
						return
					case <-time.After(200 * time.Millisecond):
					}
				}
			}()
			wait(t, tc.ok)
			close(stop)
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestUnitWindow(t *testing.T) {
	for name, u := range units {
		if UnitWindow(u) <= 0 {
			t.Errorf("unit %s has no window", name)
		}
	}
	if UnitWindow(rlsv3.RateLimitResponse_RateLimit_UNKNOWN) != 0 {
		t.Error("UNKNOWN has a window")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(lookupYAML))
	f.Add([]byte("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		c, err := Build([]*File{file})
		if err != nil {
			t.Fatalf("Build of a parsed file: %v", err)
		}
		c.Lookup(file.Domain, entries("a", "b", "c", "d"))
	})
}
