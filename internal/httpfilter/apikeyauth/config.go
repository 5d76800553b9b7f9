// Package apikeyauth is the envoy.filters.http.api_key_auth filter: it authenticates clients by
// an API key taken from a header, a query parameter or a cookie, and may restrict a route to
// some clients.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth: credentials (key →
// client), key_sources (tried in order) and forwarding (a header naming the client,
// hide_credentials). typed_per_filter_config takes ApiKeyAuthPerRoute, whose credentials,
// key_sources and forwarding replace the filter's when set, and whose allowed_clients (when
// set) limit the route to those clients.
//
// Keys are looked up by their SHA-256 digest, so how long a lookup takes says nothing about
// how close a guess was.
//
// # Stats
//
// http.<stat_prefix>.api_key_auth.allowed, unauthorized and forbidden (counters).
package apikeyauth

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"sync/atomic"

	apikeyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/api_key_auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.api_key_auth"

// Type URLs of its typed_config and of its per-route config.
const (
	TypeURL         = "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth"
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute"
)

func init() { httpfilter.Register(Factory{}) }

// Factory builds api_key_auth configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PerRouteTypeURL},
		Status: "alpha", Posture: "robust_to_untrusted_downstream",
	}
}

var fields = strict.Fields{
	"envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth":         {"credentials", "key_sources", "forwarding"},
	"envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute": {"credentials", "key_sources", "forwarding", "allowed_clients"},
	"envoy.extensions.filters.http.api_key_auth.v3.Credential":         {"key", "client"},
	"envoy.extensions.filters.http.api_key_auth.v3.KeySource":          {"header", "query", "cookie"},
	"envoy.extensions.filters.http.api_key_auth.v3.Forwarding":         {"header", "hide_credentials"},
}

type sourceKind uint8

const (
	fromHeader sourceKind = iota
	fromQuery
	fromCookie
)

type keySource struct {
	kind sourceKind
	name string // header names lower-case
}

type forwarding struct {
	header string // lower-case; "" to not forward the client
	hide   bool
}

// Config is a compiled ApiKeyAuth, or an ApiKeyAuthPerRoute (nil fields: not overridden).
type Config struct {
	credentials map[[32]byte]string // SHA-256 of the key → client
	sources     []keySource
	forwarding  *forwarding
	allowed     map[string]bool // per route only; nil: every client

	stats *authStats // nil outside a connection manager
	// bound caches the filter of a (chain, per-route) pair for the chain that last used it.
	bound atomic.Pointer[filter]
}

type authStats struct{ allowed, unauthorized, forbidden *stats.Counter }

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	a, ok := m.(*apikeyv3.ApiKeyAuth)
	if !ok {
		return nil, fmt.Errorf("api_key_auth: unexpected config type %T", m)
	}
	if err := strict.Check("api_key_auth", a, fields); err != nil {
		return nil, err
	}
	return compile(a.GetCredentials(), a.GetKeySources(), a.GetForwarding())
}

// NewOverride implements httpfilter.Factory: an ApiKeyAuthPerRoute.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	a, ok := m.(*apikeyv3.ApiKeyAuthPerRoute)
	if !ok {
		return nil, fmt.Errorf("api_key_auth: per-route config must be an ApiKeyAuthPerRoute, not %T", m)
	}
	if err := strict.Check("api_key_auth", a, fields); err != nil {
		return nil, err
	}
	c, err := compile(a.GetCredentials(), a.GetKeySources(), a.GetForwarding())
	if err != nil {
		return nil, err
	}
	if len(a.GetAllowedClients()) > 0 {
		c.allowed = map[string]bool{}
		for _, cl := range a.GetAllowedClients() {
			c.allowed[cl] = true
		}
	}
	return c, nil
}

func compile(creds []*apikeyv3.Credential, sources []*apikeyv3.KeySource, fwd *apikeyv3.Forwarding) (*Config, error) {
	c := &Config{}
	if len(creds) > 0 {
		c.credentials = make(map[[32]byte]string, len(creds))
		for i, cr := range creds {
			switch {
			case cr.GetKey() == "":
				return nil, fmt.Errorf("api_key_auth: credentials[%d].key: required", i)
			case cr.GetClient() == "":
				return nil, fmt.Errorf("api_key_auth: credentials[%d].client: required", i)
			}
			d := sha256.Sum256([]byte(cr.GetKey()))
			if _, dup := c.credentials[d]; dup {
				return nil, fmt.Errorf("api_key_auth: credentials[%d].key: duplicate key", i)
			}
			c.credentials[d] = cr.GetClient()
		}
	}
	for i, s := range sources {
		switch {
		case s.GetHeader() != "":
			c.sources = append(c.sources, keySource{fromHeader, strings.ToLower(s.GetHeader())})
		case s.GetQuery() != "":
			c.sources = append(c.sources, keySource{fromQuery, s.GetQuery()})
		case s.GetCookie() != "":
			c.sources = append(c.sources, keySource{fromCookie, s.GetCookie()})
		default:
			return nil, fmt.Errorf("api_key_auth: key_sources[%d]: one of header, query, cookie required", i)
		}
	}
	if fwd != nil {
		c.forwarding = &forwarding{header: strings.ToLower(fwd.GetHeader()), hide: fwd.GetHideCredentials()}
	}
	return c, nil
}

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	return &Config{credentials: c.credentials, sources: c.sources, forwarding: c.forwarding, stats: &authStats{
		allowed:      sc.Counter("api_key_auth.allowed"),
		unauthorized: sc.Counter("api_key_auth.unauthorized"),
		forbidden:    sc.Counter("api_key_auth.forbidden"),
	}}
}

var _ httpfilter.ScopedConfig = (*Config)(nil)
