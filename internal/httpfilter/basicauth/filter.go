package basicauth

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"

	"golang.org/x/crypto/bcrypt"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// maxCredentials bounds the decoded user:password: longer credentials are refused without
// being decoded.
const maxCredentials = 512

// Phases implements httpfilter.Config.
func (c *Config) Phases() httpfilter.Phases { return httpfilter.PhaseRequestHeaders }

// NewFilter implements httpfilter.Config. Filters keep no per-stream state; a per-route config
// gets one filter bound to the chain's settings and stats.
func (c *Config) NewFilter(_ *httpfilter.Stream, perRoute httpfilter.Config) httpfilter.Filter {
	o, ok := perRoute.(*Config)
	if !ok {
		o = c
	}
	f := o.bound.Load()
	if f == nil || f.chain != c {
		f = &filter{chain: c, users: o.users, realm: c.realm, hasRealm: c.hasRealm}
		if o.hasRealm {
			f.realm, f.hasRealm = o.realm, true
		}
		o.bound.Store(f)
	}
	return f
}

type filter struct {
	httpfilter.PassThrough
	chain    *Config // header names and stats
	users    map[string]*user
	realm    string
	hasRealm bool
}

// The bodies and details of Envoy's denials.
var (
	bodyMissing   = []byte("User authentication failed. Missing username and password.")
	bodyScheme    = []byte("User authentication failed. Expected 'Basic' authentication scheme.")
	bodyFormat    = []byte("User authentication failed. Invalid basic credential format.")
	bodyInvalid   = []byte("User authentication failed. Invalid username/password combination.")
	detailMissing = "no_credential_for_basic_auth"
	detailScheme  = "invalid_scheme_for_basic_auth"
	detailFormat  = "invalid_format_for_basic_auth"
	detailInvalid = "invalid_credential_for_basic_auth"
)

// OnRequestHeaders implements httpfilter.RequestHeadersFilter.
func (f *filter) OnRequestHeaders(s *httpfilter.Stream, h *header.Map, _ bool) httpfilter.Status {
	v, ok := h.Get(f.chain.authHeader)
	if !ok || v == "" {
		return f.deny(s, h, bodyMissing, detailMissing)
	}
	// RFC 7617: the scheme is case-insensitive ("Basic" in practice).
	if len(v) < 6 || v[5] != ' ' || !equalFoldBasic(v[:5]) {
		return f.deny(s, h, bodyScheme, detailScheme)
	}
	tok := v[6:]
	// Decoded on the stack: a request costs no allocation.
	var src [maxCredentials * 4 / 3]byte
	var buf [maxCredentials]byte
	if len(tok) > len(src) {
		return f.deny(s, h, bodyFormat, detailFormat)
	}
	enc := base64.StdEncoding
	if len(tok)%4 != 0 {
		enc = base64.RawStdEncoding // Envoy tolerates missing padding
	}
	n, err := enc.Decode(buf[:], src[:copy(src[:], tok)])
	if err != nil {
		return f.deny(s, h, bodyFormat, detailFormat)
	}
	cred := buf[:n]
	colon := -1
	for i, c := range cred {
		if c == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return f.deny(s, h, bodyFormat, detailFormat)
	}
	u := f.users[string(cred[:colon])]
	if !check(u, cred[colon+1:]) {
		return f.deny(s, h, bodyInvalid, detailInvalid)
	}
	if f.chain.forwardUser != "" {
		h.Set(f.chain.forwardUser, u.name)
	}
	if st := f.chain.stats; st != nil {
		st.allowed.Inc()
	}
	return httpfilter.Continue
}

// dummySHA is compared against when the user does not exist, so that a request for an
// unknown user takes as long as one for a known user with a {SHA} hash.
var dummySHA = make([]byte, sha1.Size)

// check verifies password for u (nil when the user does not exist) in constant time.
func check(u *user, password []byte) bool {
	if u == nil {
		d := sha1.Sum(password)
		subtle.ConstantTimeCompare(d[:], dummySHA)
		return false
	}
	if u.sha != nil {
		d := sha1.Sum(password)
		return subtle.ConstantTimeCompare(d[:], u.sha) == 1
	}
	d := sha256.Sum256(password)
	if v := u.verified.Load(); v != nil && subtle.ConstantTimeCompare(d[:], v[:]) == 1 {
		return true
	}
	if u.apr1 != nil {
		var buf [64]byte
		if subtle.ConstantTimeCompare(apr1(buf[:0], password, u.apr1Salt), u.apr1) != 1 {
			return false
		}
	} else if bcrypt.CompareHashAndPassword(u.bcrypt, password) != nil {
		return false
	}
	ok := new([32]byte) // a copy, so that d stays on the stack on the fast path
	*ok = d
	u.verified.Store(ok)
	return true
}

func equalFoldBasic(s string) bool {
	const want = "basic"
	for i := 0; i < 5; i++ {
		if s[i]|0x20 != want[i] {
			return false
		}
	}
	return true
}

// deny answers 401 with WWW-Authenticate: Basic realm="…": the configured realm, else the
// request's URI (scheme, host and path truncated to 256 bytes), as Envoy.
func (f *filter) deny(s *httpfilter.Stream, h *header.Map, body []byte, details string) httpfilter.Status {
	if st := f.chain.stats; st != nil {
		st.denied.Inc()
	}
	challenge := f.realm
	if !f.hasRealm {
		challenge = uriRealm(h)
	}
	s.Info.ResponseDetails = details
	r := &s.Response
	r.Reset()
	r.Status = 401
	r.Set("www-authenticate", challenge)
	r.Set("content-type", "text/plain")
	r.Set("content-length", strconv.Itoa(len(body)))
	s.EncodeHeaders(false)
	s.EncodeBody(body, true)
	return httpfilter.Stop
}

func uriRealm(h *header.Map) string {
	path := h.Path
	if len(path) > 256 {
		path = path[:256]
	}
	scheme := h.Value("x-forwarded-proto")
	if scheme == "" {
		scheme = h.Scheme
	}
	return `Basic realm="` + quote(scheme+"://"+h.Authority+path) + `"`
}
