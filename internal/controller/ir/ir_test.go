package ir

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func sample() *Config {
	return &Config{
		Listeners: []*Listener{{
			Name: "https", Address: "0.0.0.0", Port: 443,
			Chains: []*FilterChain{{Name: "a.example.com", ServerNames: []string{"a.example.com"},
				TLS: &TLS{Secret: "default/tls@local", ALPN: []string{"h2", "http/1.1"}}}},
			HTTP: &HTTP{RouteName: "https", RDS: true, Codec: CodecAuto, VirtualHosts: []*VirtualHost{{
				Name: "a.example.com", Domains: []string{"a.example.com"},
				Routes: []*Route{{
					Name: "r", Match: Match{Kind: PathRegexPrefix, Path: "/x(/|$)(.*)", CaseInsensitive: true},
					Backends: []WeightedBackend{{Cluster: "c", Weight: 1}},
					Policy: Policy{
						Timeout: NewDuration(0), IdleTimeout: NewDuration(90 * time.Second),
						Rewrite: &Rewrite{Pattern: "(?i)^/x(/|$)(.*).*", Substitution: `/\2`},
						Hash:    []Hash{{Cookie: &HashCookie{Name: "INGRESSCOOKIE", TTL: NewDuration(time.Hour)}}},
						Fault:   &Fault{Delay: &FaultDelay{Duration: Duration{time.Second}}},
					},
				}},
			}}},
		}},
		Clusters: []*Cluster{{Name: "c", Kind: ClusterEDS, Protocol: "HTTP1", LB: "RING_HASH",
			Localities: []Locality{{Zone: "local", Weight: 1, Endpoints: []Endpoint{{Address: "10.0.0.1", Port: 8080}}}}}},
		Secrets: []*Secret{{Name: "default/tls@local", Cert: "C", Key: "K"}},
	}
}

func route0(c *Config) *Route { return c.Listeners[0].HTTP.VirtualHosts[0].Routes[0] }

// TestYAMLRoundTrip checks that the IR reads back what it writes, durations included.
func TestYAMLRoundTrip(t *testing.T) {
	c := sample()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := yaml.UnmarshalStrict(y, &back); err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	if !reflect.DeepEqual(c, &back) {
		t.Errorf("round trip differs:\n%s", y)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{name: "missing cluster", change: func(c *Config) { route0(c).Backends[0].Cluster = "nope" }, want: `cluster "nope" not found`},
		{name: "two actions", change: func(c *Config) { route0(c).Respond = &Respond{Status: 503} }, want: "exactly one of"},
		{name: "bad regex", change: func(c *Config) { route0(c).Match.Path = "/(" }, want: "match.path"},
		{name: "bad address", change: func(c *Config) { c.Clusters[0].Localities[0].Endpoints[0].Address = "web" }, want: "localities[0].endpoints[0]"},
		{name: "missing secret", change: func(c *Config) { c.Listeners[0].Chains[0].TLS.Secret = "x" }, want: `tls.secret "x" not found`},
		{name: "no certificate", change: func(c *Config) { c.Listeners[0].Chains[0].TLS.Secret = "" }, want: "needs a secret or a certificate and key file"},
		{name: "bad listener address", change: func(c *Config) { c.Listeners[0].Address = "any" }, want: "listeners[0] (https): address"},
		{name: "missing passthrough cluster", change: func(c *Config) {
			c.Listeners[0].Chains = append(c.Listeners[0].Chains, &FilterChain{ServerNames: []string{"b"}, Passthrough: "nope"})
		}, want: `passthrough cluster "nope" not found`},
		{name: "bad codec", change: func(c *Config) { c.Listeners[0].HTTP.Codec = "h3" }, want: "http.codec"},
		{name: "duplicate route", change: func(c *Config) {
			vh := c.Listeners[0].HTTP.VirtualHosts[0]
			vh.Routes = append(vh.Routes, vh.Routes[0])
		}, want: "duplicate name"},
		{name: "relative path", change: func(c *Config) { route0(c).Match = Match{Kind: PathPrefix, Path: "x"} }, want: "does not start with /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sample()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
