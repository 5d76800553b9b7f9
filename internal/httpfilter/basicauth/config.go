// Package basicauth is the envoy.filters.http.basic_auth filter: it authenticates requests
// with HTTP Basic credentials (RFC 7617) against htpasswd users.
//
// # Configuration
//
// typed_config is envoy.extensions.filters.http.basic_auth.v3.BasicAuth: users (a DataSource
// in htpasswd format, inline or a file read when the config is built), forward_username_header,
// authentication_header and realm. typed_per_filter_config takes BasicAuthPerRoute, whose users
// (and realm) replace the filter's on that route.
//
// Envoy accepts only {SHA} hashes; Nuncio also accepts bcrypt ($2y$, $2a$, $2b$) and Apache's
// MD5-crypt ($apr1$, htpasswd's default), which ingress-nginx users have in their secrets. A
// bcrypt check costs tens of milliseconds and an $apr1$ one a thousand MD5 rounds, so a user's
// last verified password is remembered as its SHA-256 digest and later requests with it are
// checked in constant time against that. allow_missing and emit_dynamic_metadata are
// rejected: no filter consumes dynamic metadata yet.
//
// # Stats
//
// http.<stat_prefix>.basic_auth.allowed and denied (counters).
package basicauth

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	basicauthv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/basic_auth/v3"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/httpfilter/strict"
	"github.com/nuncio-gw/nuncio/internal/stats"
)

// Name is the filter's canonical name.
const Name = "envoy.filters.http.basic_auth"

// Type URLs of its typed_config and of its per-route config.
const (
	TypeURL         = "type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuth"
	PerRouteTypeURL = "type.googleapis.com/envoy.extensions.filters.http.basic_auth.v3.BasicAuthPerRoute"
)

func init() { httpfilter.Register(Factory{}) }

// Factory builds basic_auth configs.
type Factory struct{}

// Info implements httpfilter.Factory.
func (Factory) Info() httpfilter.Info {
	return httpfilter.Info{
		Name: Name, TypeURLs: []string{TypeURL, PerRouteTypeURL},
		Status: "stable", Posture: "robust_to_untrusted_downstream",
	}
}

var fields = strict.Fields{
	"envoy.extensions.filters.http.basic_auth.v3.BasicAuth": {
		"users", "forward_username_header", "authentication_header", "realm",
	},
	"envoy.extensions.filters.http.basic_auth.v3.BasicAuthPerRoute": {"users", "realm"},
	"envoy.config.core.v3.DataSource":                               {"filename", "inline_bytes", "inline_string"},
}

// user is one htpasswd entry.
type user struct {
	name string
	sha  []byte // the SHA-1 digest of {SHA} entries
	// bcrypt is the hash of bcrypt entries, apr1 the whole $apr1$ entry and apr1Salt its
	// salt; verified holds the SHA-256 digest of the last password either accepted.
	bcrypt   []byte
	apr1     []byte
	apr1Salt string
	verified atomic.Pointer[[32]byte]
}

// Config is a compiled BasicAuth, or a BasicAuthPerRoute (users and realm only).
type Config struct {
	users       map[string]*user
	forwardUser string // header name, lower-case; "" to not forward
	authHeader  string // lower-case; "authorization" by default
	realm       string // the WWW-Authenticate value; "" to use the request URI
	hasRealm    bool

	stats *authStats // nil outside a connection manager
	// bound is the filter of a per-route config for the chain that last used it.
	bound atomic.Pointer[filter]
}

type authStats struct{ allowed, denied *stats.Counter }

// NewConfig implements httpfilter.Factory.
func (Factory) NewConfig(m proto.Message) (httpfilter.Config, error) {
	b, ok := m.(*basicauthv3.BasicAuth)
	if !ok {
		return nil, fmt.Errorf("basic_auth: unexpected config type %T", m)
	}
	switch {
	case b.GetAllowMissing():
		return nil, fmt.Errorf("basic_auth: allow_missing: not supported (needs dynamic metadata)")
	case b.GetEmitDynamicMetadata():
		return nil, fmt.Errorf("basic_auth: emit_dynamic_metadata: not supported (no dynamic metadata)")
	}
	if err := strict.Check("basic_auth", b, fields); err != nil {
		return nil, err
	}
	c := &Config{authHeader: "authorization"}
	var err error
	if c.users, err = readUsers("users", b.GetUsers()); err != nil {
		return nil, err
	}
	if h := b.GetForwardUsernameHeader(); h != "" {
		if c.forwardUser, err = headerName("forward_username_header", h); err != nil {
			return nil, err
		}
	}
	if h := b.GetAuthenticationHeader(); h != "" {
		if c.authHeader, err = headerName("authentication_header", h); err != nil {
			return nil, err
		}
	}
	if b.GetRealm() != "" {
		if c.realm, err = realm("realm", b.GetRealm()); err != nil {
			return nil, err
		}
		c.hasRealm = true
	}
	return c, nil
}

// NewOverride implements httpfilter.Factory: a BasicAuthPerRoute.
func (Factory) NewOverride(m proto.Message) (httpfilter.Config, error) {
	b, ok := m.(*basicauthv3.BasicAuthPerRoute)
	if !ok {
		return nil, fmt.Errorf("basic_auth: per-route config must be a BasicAuthPerRoute, not %T", m)
	}
	if err := strict.Check("basic_auth", b, fields); err != nil {
		return nil, err
	}
	c := &Config{}
	var err error
	if c.users, err = readUsers("users", b.GetUsers()); err != nil {
		return nil, err
	}
	if b.GetRealm() != "" {
		if c.realm, err = realm("realm", b.GetRealm()); err != nil {
			return nil, err
		}
		c.hasRealm = true
	}
	return c, nil
}

// WithScope implements httpfilter.ScopedConfig.
func (c *Config) WithScope(sc *stats.Scope) httpfilter.Config {
	out := &Config{
		users: c.users, forwardUser: c.forwardUser, authHeader: c.authHeader,
		realm: c.realm, hasRealm: c.hasRealm,
		stats: &authStats{allowed: sc.Counter("basic_auth.allowed"), denied: sc.Counter("basic_auth.denied")},
	}
	return out
}

func readUsers(field string, ds *corev3.DataSource) (map[string]*user, error) {
	var text string
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_InlineString:
		text = s.InlineString
	case *corev3.DataSource_InlineBytes:
		text = string(s.InlineBytes)
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("basic_auth: %s.filename: %v", field, err)
		}
		text = string(b)
	default:
		return nil, fmt.Errorf("basic_auth: %s: required", field)
	}
	users, err := parseHtpasswd(text)
	if err != nil {
		return nil, fmt.Errorf("basic_auth: %s: %w", field, err)
	}
	return users, nil
}

// parseHtpasswd reads "name:hash" lines; empty lines and lines starting with # are skipped.
// Errors name the user, never the hash.
func parseHtpasswd(text string) (map[string]*user, error) {
	users := map[string]*user{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSuffix(sc.Text(), "\r")
		if l == "" || l[0] == '#' {
			continue
		}
		name, hash, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: invalid htpasswd format, username:password is expected", line)
		}
		if name == "" || hash == "" {
			return nil, fmt.Errorf("line %d: empty user name or password", line)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("duplicate user %q", name)
		}
		u := &user{name: name}
		switch {
		case strings.HasPrefix(hash, "{SHA}"):
			d, err := base64.StdEncoding.DecodeString(hash[5:])
			if err != nil || len(d) != sha1.Size {
				return nil, fmt.Errorf("invalid SHA hash for %q", name)
			}
			u.sha = d
		case strings.HasPrefix(hash, "$2y$") || strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$"):
			if _, err := bcrypt.Cost([]byte(hash)); err != nil {
				return nil, fmt.Errorf("invalid bcrypt hash for %q: %v", name, err)
			}
			u.bcrypt = []byte(hash)
		case strings.HasPrefix(hash, apr1Magic):
			salt, err := parseAPR1(hash)
			if err != nil {
				return nil, fmt.Errorf("invalid $apr1$ hash for %q", name)
			}
			u.apr1, u.apr1Salt = []byte(hash), salt
		default:
			return nil, fmt.Errorf("unsupported htpasswd format for %q: use {SHA}, bcrypt ($2y$) or $apr1$", name)
		}
		users[name] = u
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

func headerName(field, h string) (string, error) {
	if h == "" || strings.IndexFunc(h, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) >= 0 {
		return "", fmt.Errorf("basic_auth: %s: %q is not a header name", field, h)
	}
	return strings.ToLower(h), nil
}

// realm checks a realm and returns the WWW-Authenticate value, its quotes and backslashes
// escaped (RFC 9110 quoted-string).
func realm(field, r string) (string, error) {
	if strings.IndexFunc(r, func(c rune) bool { return c < ' ' || c == 0x7f }) >= 0 {
		return "", fmt.Errorf("basic_auth: %s: control characters not allowed", field)
	}
	return `Basic realm="` + quote(r) + `"`, nil
}

func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var _ httpfilter.ScopedConfig = (*Config)(nil)
