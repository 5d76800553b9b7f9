package jwtauthn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/nuncio-gw/nuncio/internal/header"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
)

// provider is a compiled JwtProvider.
type provider struct {
	name        string
	issuer      string
	audiences   []string
	requireExp  bool
	maxLifetime int64 // seconds; 0: no bound
	skew        int64 // seconds

	headers []headerLoc
	params  []string
	cookies []string

	forward         bool
	payloadHeader   string
	padPayload      bool
	metadataKey     string
	claimHeaders    []claimHeader
	clearRouteCache bool

	local  *keySet
	remote *remote
	cache  tokenCache
}

type headerLoc struct {
	name   string // lower-case
	prefix string
}

type claimHeader struct {
	header string // lower-case
	path   []string
}

func newProvider(name string, p *jwtv3.JwtProvider) (*provider, error) {
	pr := &provider{
		name: name, issuer: p.GetIssuer(), audiences: p.GetAudiences(),
		requireExp: p.GetRequireExpiration(), forward: p.GetForward(),
		params: p.GetFromParams(), padPayload: p.GetPadForwardPayloadHeader(),
		metadataKey: p.GetPayloadInMetadata(), clearRouteCache: p.GetClearRouteCache(),
		skew: int64(defaultClockSkew / time.Second),
	}
	if p.ClockSkewSeconds != 0 {
		pr.skew = int64(p.GetClockSkewSeconds())
	}
	if d := p.GetMaxLifetime(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < time.Second {
			return nil, errors.New("max_lifetime: must be at least 1s")
		}
		pr.maxLifetime = int64(d.AsDuration() / time.Second)
	}
	for i, h := range p.GetFromHeaders() {
		n := header.Lower(h.GetName())
		if n == "" {
			return nil, fmt.Errorf("from_headers[%d].name: empty", i)
		}
		pr.headers = append(pr.headers, headerLoc{name: n, prefix: h.GetValuePrefix()})
	}
	for i, n := range p.GetFromCookies() {
		if n == "" {
			return nil, fmt.Errorf("from_cookies[%d]: empty", i)
		}
		pr.cookies = append(pr.cookies, n)
	}
	if len(pr.headers) == 0 && len(pr.params) == 0 && len(pr.cookies) == 0 {
		// Envoy's default locations.
		pr.headers = []headerLoc{{name: "authorization", prefix: "Bearer "}}
		pr.params = []string{"access_token"}
	}
	if h := p.GetForwardPayloadHeader(); h != "" {
		pr.payloadHeader = header.Lower(h)
	}
	for i, ch := range p.GetClaimToHeaders() {
		if ch.GetHeaderName() == "" || ch.GetClaimName() == "" {
			return nil, fmt.Errorf("claim_to_headers[%d]: header_name and claim_name required", i)
		}
		pr.claimHeaders = append(pr.claimHeaders, claimHeader{
			header: header.Lower(ch.GetHeaderName()), path: strings.Split(ch.GetClaimName(), "."),
		})
	}
	size, maxTok := defaultCacheSize, defaultMaxCachedSize
	if cc := p.GetJwtCacheConfig(); cc != nil {
		if cc.GetJwtCacheSize() > 0 {
			size = int(cc.GetJwtCacheSize())
		}
		if cc.GetJwtMaxTokenSize() > 0 {
			maxTok = int(cc.GetJwtMaxTokenSize())
		}
	}
	pr.cache = tokenCache{size: size, maxToken: maxTok, m: map[string]*verified{}}
	switch {
	case p.GetLocalJwks() != nil:
		ks, err := loadJWKS(p.GetLocalJwks())
		if err != nil {
			return nil, fmt.Errorf("local_jwks: %v", err)
		}
		pr.local = ks
	case p.GetRemoteJwks() != nil:
		r, err := newRemote(p.GetRemoteJwks())
		if err != nil {
			return nil, fmt.Errorf("remote_jwks.%v", err)
		}
		pr.remote = r
	default:
		return nil, errors.New("jwks_source_specifier: one of local_jwks, remote_jwks required")
	}
	return pr, nil
}

// outputHeaders are the request headers a verified token of this provider sets.
func (p *provider) outputHeaders() []string {
	var hs []string
	if p.payloadHeader != "" {
		hs = append(hs, p.payloadHeader)
	}
	for _, ch := range p.claimHeaders {
		hs = append(hs, ch.header)
	}
	return hs
}

// extract finds the provider's token in the request: its headers, then its query
// parameters, then its cookies. loc is the index of the header it came from, else -1.
func (p *provider) extract(h *header.Map) (tok string, loc int) {
	for i := range p.headers {
		hl := &p.headers[i]
		found := ""
		h.Values(hl.name, func(v string) bool {
			found = tokenIn(v, hl.prefix)
			return found == ""
		})
		if found != "" {
			return found, i
		}
	}
	if len(p.params) > 0 {
		if _, q, ok := strings.Cut(h.Path, "?"); ok {
			for _, name := range p.params {
				if t := queryValue(q, name); t != "" {
					return t, -1
				}
			}
		}
	}
	if len(p.cookies) > 0 {
		for _, name := range p.cookies {
			if t := cookieValue(h, name); t != "" {
				return t, -1
			}
		}
	}
	return "", -1
}

// tokenIn returns the token in a header value: after prefix (found anywhere in the value,
// ASCII case ignored, as a scheme such as "Bearer " is), the run of characters a JWT may hold.
func tokenIn(v, prefix string) string {
	if prefix != "" {
		i := indexFold(v, prefix)
		if i < 0 {
			return ""
		}
		v = v[i+len(prefix):]
	}
	v = strings.TrimLeft(v, " ")
	n := 0
	for n < len(v) && jwtChar(v[n]) {
		n++
	}
	return v[:n]
}

func jwtChar(c byte) bool { return jwtChars[c] }

// jwtChars are the bytes a token may hold: base64 of both alphabets, padding and dots.
var jwtChars = func() (t [256]bool) {
	for _, c := range []byte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.=+/") {
		t[c] = true
	}
	return t
}()

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func queryValue(q, name string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return ""
		}
		return v
	}
	return ""
}

func cookieValue(h *header.Map, name string) string {
	found := ""
	h.Values("cookie", func(v string) bool {
		for v != "" {
			var c string
			c, v, _ = strings.Cut(v, ";")
			k, val, ok := strings.Cut(strings.TrimSpace(c), "=")
			if ok && k == name {
				found = strings.Trim(val, `"`)
				return false
			}
		}
		return true
	})
	return found
}

// verified is a token whose signature checked out, as the cache keeps it; immutable.
type verified struct {
	raw            string
	exp, nbf       int64
	hasExp, hasNbf bool
	aud            []string
	payload        string         // forward_payload_header's value
	claims         map[string]any // payload_in_metadata's value; read-only once cached
	claimValues    []string       // per claimHeaders; "" when the claim is absent
}

// verify checks raw for this provider: issuer, time, audiences (aud, or the provider's when
// nil), then the signature with the provider's keys. A token verified before comes from the
// cache and only its time and audiences are checked again.
func (p *provider) verify(ctx context.Context, raw string, aud []string, st *filterStats, now int64) (status, *verified) {
	if aud == nil {
		aud = p.audiences
	}
	if v := p.cache.get(raw); v != nil {
		st.cacheHit.Inc()
		if s := p.checkTime(v.hasNbf, v.nbf, v.hasExp, v.exp, now); s != stOK {
			return s, nil
		}
		if !audienceAllowed(v.aud, aud) {
			return stAudienceNotAllowed, nil
		}
		return stOK, v
	}
	st.cacheMiss.Inc()
	t, s := parseToken(raw)
	if s != stOK {
		return s, nil
	}
	if p.issuer != "" && t.iss != p.issuer {
		return stUnknownIssuer, nil
	}
	if s := p.checkTime(t.hasNbf, t.nbf, t.hasExp, t.exp, now); s != stOK {
		return s, nil
	}
	if p.requireExp && !t.hasExp {
		return stNoExpiration, nil
	}
	if p.maxLifetime > 0 {
		if !t.hasExp {
			return stNoExpiration, nil
		}
		start := now
		if t.hasIat {
			start = t.iat
		} else if t.hasNbf {
			start = t.nbf
		}
		if t.exp-start > p.maxLifetime {
			return stLifetimeTooLong, nil
		}
	}
	if !audienceAllowed(t.aud, aud) {
		return stAudienceNotAllowed, nil
	}
	ks := p.local
	if p.remote != nil {
		if ks = p.remote.keys(ctx, st); ks == nil {
			return stJwksFetchFail, nil
		}
	}
	if s := ks.verify(t); s != stOK {
		return s, nil
	}
	v := p.newVerified(raw, t)
	p.cache.put(v)
	return stOK, v
}

func (p *provider) checkTime(hasNbf bool, nbf int64, hasExp bool, exp, now int64) status {
	if hasNbf && nbf > now+p.skew {
		return stNotYetValid
	}
	if hasExp && now > exp+p.skew {
		return stExpired
	}
	return stOK
}

// audienceAllowed reports whether the token's audiences meet the allowed ones: any of them
// will do, and an empty allowed list accepts every token.
func audienceAllowed(tokenAud, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range tokenAud {
		if slices.Contains(allowed, a) {
			return true
		}
	}
	return false
}

// newVerified prepares what a verified token leaves on requests, once, so that a cached
// token costs no formatting.
func (p *provider) newVerified(raw string, t *token) *verified {
	v := &verified{
		raw: strings.Clone(raw), exp: t.exp, nbf: t.nbf, hasExp: t.hasExp, hasNbf: t.hasNbf,
		aud: t.aud, claims: t.claims,
	}
	if p.payloadHeader != "" {
		v.payload = strings.Clone(t.payload)
		if p.padPayload {
			b, _ := strict.DecodeString(t.payload)
			v.payload = base64.URLEncoding.EncodeToString(b)
		}
	}
	for _, ch := range p.claimHeaders {
		v.claimValues = append(v.claimValues, claimString(t.claims, ch.path))
	}
	return v
}

// claimString renders a claim for a header as Envoy does: strings as they are, numbers and
// booleans in JSON, lists of them joined with commas; objects and absent claims give "".
func claimString(claims map[string]any, path []string) string {
	var cur any = claims
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		if cur, ok = m[seg]; !ok {
			return ""
		}
	}
	switch v := cur.(type) {
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if s := scalarString(e); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	default:
		return scalarString(v)
	}
}

func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// apply leaves a verified token's results on the request.
func (p *provider) apply(s *httpfilter.Stream, h *header.Map, v *verified, loc int) {
	if !p.forward && loc >= 0 {
		h.Del(p.headers[loc].name)
	}
	if p.payloadHeader != "" {
		h.Set(p.payloadHeader, v.payload)
	}
	for i, ch := range p.claimHeaders {
		if v.claimValues[i] != "" {
			h.Set(ch.header, v.claimValues[i])
		}
	}
	if p.metadataKey != "" {
		s.Metadata.Set(Name, p.metadataKey, v.claims)
	}
}

// tokenCache keeps verified tokens of one provider, keyed by the raw token, up to size
// entries; tokens longer than maxToken are not kept. Reads take a shared lock only.
type tokenCache struct {
	mu       sync.RWMutex
	m        map[string]*verified
	size     int
	maxToken int
}

func (c *tokenCache) get(raw string) *verified {
	if len(raw) > c.maxToken {
		return nil
	}
	c.mu.RLock()
	v := c.m[raw]
	c.mu.RUnlock()
	return v
}

// put adds v; when the cache is full it drops expired tokens, else one at random (map
// order), which bounds memory whatever clients send.
func (c *tokenCache) put(v *verified) {
	if len(v.raw) > c.maxToken {
		return
	}
	now := time.Now().Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.size {
		for k, e := range c.m {
			if e.hasExp && e.exp < now {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.size {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[v.raw] = v
}
