package v1alpha1

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// valid returns a small valid config for a test to break in one place.
func valid() *Config {
	return &Config{
		APIVersion: APIVersion,
		Kind:       KindConfig,
		Listeners: []Listener{{
			Name:    "web",
			Address: "0.0.0.0:8080",
			Routes:  []Route{{Backend: "api"}},
		}},
		Backends: []Backend{{Name: "api", Endpoints: []Endpoint{{Address: "10.0.0.1:8080"}}}},
	}
}

func TestValidate(t *testing.T) {
	w := func(n uint32) *uint32 { return &n }
	tests := []struct {
		name   string
		change func(c *Config)
		// want lists the expected errors, exactly; nil means valid.
		want []string
	}{
		{name: "valid", change: func(*Config) {}},
		{
			name: "every problem is reported",
			change: func(c *Config) {
				c.Kind = "config"
				c.Listeners[0].Routes[0].Backend = "x"
				c.Backends[0].Protocol = "h3"
			},
			want: []string{
				`kind: must be "Config", got "config"`,
				`backends[0].protocol: "h3" must be one of http1, http2, auto`,
				`listeners[0].routes[0].backend: backend "x" is not defined`,
			},
		},
		{
			name:   "negative timeout",
			change: func(c *Config) { c.Listeners[0].Timeouts = &ListenerTimeouts{Idle: D(-time.Second)} },
			want:   []string{`listeners[0].timeouts.idle: must not be negative, got -1s`},
		},
		{
			name: "duplicate address",
			change: func(c *Config) {
				c.Listeners = append(c.Listeners, Listener{Name: "b", Address: "0.0.0.0:8080", Routes: []Route{{Backend: "api"}}})
			},
			want: []string{`listeners[1].address: 0.0.0.0:8080 is already the address of listeners[0]`},
		},
		{
			name:   "port zero",
			change: func(c *Config) { c.Admin = &Admin{Address: "127.0.0.1:0"} },
			want:   []string{`admin.address: port in "127.0.0.1:0" must be a number from 1 to 65535`},
		},
		{
			name: "weighted backends listed twice",
			change: func(c *Config) {
				c.Listeners[0].Routes[0] = Route{Backends: []WeightedBackend{{Name: "api", Weight: w(1)}, {Name: "api"}}}
			},
			want: []string{`listeners[0].routes[0].backends[1].name: backend "api" is already listed at backends[0]`},
		},
		{
			name: "add and set the same header",
			change: func(c *Config) {
				c.Listeners[0].Routes[0].Headers = &HeaderRules{Response: &HeaderOps{Set: map[string]string{"X-A": "1"}, Add: map[string]string{"x-a": "2"}}}
			},
			want: []string{`listeners[0].routes[0].headers.response.add["x-a"]: is also in set; give a header in one of set and add`},
		},
		{
			name: "request headers on a direct response",
			change: func(c *Config) {
				c.Listeners[0].Routes[0] = Route{Respond: &Respond{Status: 200}, Headers: &HeaderRules{Request: &HeaderOps{Remove: []string{"x"}}}}
			},
			want: []string{`listeners[0].routes[0].headers.request: only applies to routes with backend or backends`},
		},
		{
			name: "two default certificates",
			change: func(c *Config) {
				c.Listeners[0].TLS = &ListenerTLS{Certificates: []Certificate{{Cert: "a", Key: "a"}, {Cert: "b", Key: "b"}}}
			},
			want: []string{`listeners[0].tls.certificates[1].hosts: only one certificate may omit hosts (certificates[0] already does)`},
		},
		{
			name:   "client cert without key",
			change: func(c *Config) { c.Backends[0].TLS = &BackendTLS{Cert: "c.pem"} },
			want:   []string{`backends[0].tls: cert and key must be given together`},
		},
		{
			name:   "bad route name",
			change: func(c *Config) { c.Listeners[0].Routes[0].Name = "my route" },
			want:   []string{`listeners[0].routes[0].name: "my route" must start with a letter or digit and contain only letters, digits, '.', '_' and '-'`},
		},
		{
			name:   "bad host",
			change: func(c *Config) { c.Listeners[0].Routes[0].Hosts = []string{"api.*"} },
			want:   []string{`listeners[0].routes[0].hosts[0]: "api.*" must be a DNS name such as example.com, a wildcard such as *.example.com, or "*"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(c)
			err := c.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Errorf("%v is not a *FieldError", e)
					}
					got = append(got, e.Error())
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestHostSet(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
		want  []string
	}{
		{name: "none means any", hosts: nil, want: []string{"*"}},
		{name: "sorted and lower-cased", hosts: []string{"b.example", "A.example"}, want: []string{"a.example", "b.example"}},
		{name: "duplicates dropped", hosts: []string{"a", "A", "a"}, want: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := HostSet(tc.hosts); !slices.Equal(got, tc.want) {
				t.Errorf("HostSet(%q) = %q, want %q", tc.hosts, got, tc.want)
			}
		})
	}
}
